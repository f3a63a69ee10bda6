import Foundation

// IAM (Query protocol, API version 2010-05-08): finding who owns a leaked access key and
// switching keys off, plus user and key creation for tests and tools. IAM is global: requests
// go to iam.amazonaws.com and are signed for us-east-1 (`AWSClient.signingRegion`).

/// The status an access key can be set to.
public enum IAMAccessKeyStatus: String, Sendable, Equatable, CaseIterable {
    /// The key can sign requests.
    case active = "Active"
    /// The key is switched off but kept, so it can be switched back on after an investigation.
    case inactive = "Inactive"
}

/// An IAM access key's metadata. The secret is never part of it, not even from `createAccessKey`.
public struct IAMAccessKey: Sendable, Equatable {
    /// The access key id (`AKIA...`).
    public var accessKeyID: String
    /// The IAM user the key belongs to.
    public var userName: String
    /// The status as IAM spells it (`Active`, `Inactive`); a string because IAM may report
    /// statuses a client cannot set.
    public var status: String
    /// When the key was created.
    public var createDate: Date?

    /// Makes a key entry.
    public init(accessKeyID: String, userName: String, status: String, createDate: Date? = nil) {
        self.accessKeyID = accessKeyID
        self.userName = userName
        self.status = status
        self.createDate = createDate
    }

    /// Whether the key can sign requests.
    public var isActive: Bool { status == IAMAccessKeyStatus.active.rawValue }

    /// From an `AccessKeyMetadata` member or an `AccessKey` element (whose `SecretAccessKey`
    /// is deliberately not read); `nil` without an `AccessKeyId`.
    init?(node: XMLNode) {
        guard let id = node.text("AccessKeyId") else { return nil }
        self.init(accessKeyID: id, userName: node.text("UserName") ?? "", status: node.text("Status") ?? "",
                  createDate: node.text("CreateDate").flatMap(AWSTimestamp.parse))
    }

    /// The keys of a `ListAccessKeysResponse`, with its `Marker` when `IsTruncated`.
    static func page(_ root: XMLNode) -> AWSPage<IAMAccessKey> {
        let result = root.child("ListAccessKeysResult") ?? root
        let truncated = result.text("IsTruncated") == "true"
        return AWSPage(items: result.items("AccessKeyMetadata").compactMap(IAMAccessKey.init(node:)),
                       nextToken: truncated ? result.text("Marker") : nil)
    }

    /// Parses a `ListAccessKeysResponse` document; throws `invalid_response` when it is not one.
    public static func parseListAccessKeys(_ body: [UInt8]) throws(AWSError) -> AWSPage<IAMAccessKey> {
        page(try AWSClient.queryResult(body, action: "ListAccessKeys"))
    }

    /// The owner's user name from a `GetAccessKeyLastUsedResponse`.
    static func owner(_ root: XMLNode) throws(AWSError) -> String {
        guard let name = (root.child("GetAccessKeyLastUsedResult") ?? root).text("UserName") else {
            throw AWSError(code: "invalid_response", message: "GetAccessKeyLastUsed answer has no UserName")
        }
        return name
    }

    /// Parses a `GetAccessKeyLastUsedResponse` document into the key owner's user name;
    /// throws `invalid_response` when it is not one or names no user.
    public static func parseAccessKeyOwner(_ body: [UInt8]) throws(AWSError) -> String {
        try owner(try AWSClient.queryResult(body, action: "GetAccessKeyLastUsed"))
    }
}

/// An IAM user, as ListUsers describes it (ListUsers does not return tags).
public struct IAMUser: Sendable, Equatable {
    /// The user name, unique within the account.
    public var userName: String
    /// IAM's stable id for the user (`AIDA...`).
    public var userID: String
    /// The user's ARN (`arn:aws:iam::123456789012:user/division/alice`).
    public var arn: String
    /// The path the user was created under (`/` by default).
    public var path: String
    /// When the user was created.
    public var createDate: Date?

    /// Makes a user entry.
    public init(userName: String, userID: String, arn: String, path: String = "/", createDate: Date? = nil) {
        self.userName = userName
        self.userID = userID
        self.arn = arn
        self.path = path
        self.createDate = createDate
    }

    /// The account id in the ARN (its fifth field), `nil` when the ARN has none.
    public var accountID: String? {
        let fields = arn.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false)
        guard fields.count == 6, !fields[4].isEmpty else { return nil }
        return String(fields[4])
    }

    /// From a `Users` member; `nil` without a `UserName` or `Arn`.
    init?(node: XMLNode) {
        guard let name = node.text("UserName"), let arn = node.text("Arn") else { return nil }
        self.init(userName: name, userID: node.text("UserId") ?? "", arn: arn, path: node.text("Path") ?? "/",
                  createDate: node.text("CreateDate").flatMap(AWSTimestamp.parse))
    }

    /// The users of a `ListUsersResponse`, with its `Marker` when `IsTruncated`.
    static func page(_ root: XMLNode) -> AWSPage<IAMUser> {
        let result = root.child("ListUsersResult") ?? root
        let truncated = result.text("IsTruncated") == "true"
        return AWSPage(items: result.items("Users").compactMap(IAMUser.init(node:)),
                       nextToken: truncated ? result.text("Marker") : nil)
    }

    /// Parses a `ListUsersResponse` document; throws `invalid_response` when it is not one.
    public static func parseListUsers(_ body: [UInt8]) throws(AWSError) -> AWSPage<IAMUser> {
        page(try AWSClient.queryResult(body, action: "ListUsers"))
    }
}

extension AWSClient {
    /// The IAM API version every call is made with.
    public static let iamAPIVersion = "2010-05-08"

    /// One IAM action.
    func iam(_ action: String, _ parameters: [(name: String, value: String)] = []) async throws(AWSError) -> XMLNode {
        try await query(service: "iam", action: action, version: Self.iamAPIVersion, parameters: parameters)
    }

    /// Every IAM user of the account, every page followed (Marker / IsTruncated).
    public func listUsers() async throws(AWSError) -> [IAMUser] {
        try await allPages { (marker: String?) async throws(AWSError) -> AWSPage<IAMUser> in
            IAMUser.page(try await iam("ListUsers", marker.map { [("Marker", $0)] } ?? []))
        }
    }

    /// Deletes one of the user's access keys (tests and tools; responses only deactivate keys).
    public func deleteAccessKey(accessKeyID: String, userName: String) async throws(AWSError) {
        _ = try await iam("DeleteAccessKey", [("UserName", userName), ("AccessKeyId", accessKeyID)])
    }

    /// The user's access keys (at most two exist per user), every page followed. A missing
    /// user is `NoSuchEntity`.
    public func listAccessKeys(userName: String) async throws(AWSError) -> [IAMAccessKey] {
        try await allPages { (marker: String?) async throws(AWSError) -> AWSPage<IAMAccessKey> in
            var parameters: [(name: String, value: String)] = [("UserName", userName)]
            if let marker { parameters.append(("Marker", marker)) }
            return IAMAccessKey.page(try await iam("ListAccessKeys", parameters))
        }
    }

    /// Sets a key `Active` or `Inactive`. The user name is required here although IAM would
    /// default it to the caller: a defaulted name could switch off the responder's own key.
    public func updateAccessKey(accessKeyID: String, userName: String, status: IAMAccessKeyStatus) async throws(AWSError) {
        _ = try await iam("UpdateAccessKey", [("UserName", userName), ("AccessKeyId", accessKeyID), ("Status", status.rawValue)])
    }

    /// The IAM user that owns the key (GetAccessKeyLastUsed), which is how an alert carrying
    /// only a key id finds the user to act on. Works for keys of the caller's own account;
    /// an unknown key is `NoSuchEntity`, another account's is `AccessDenied`.
    public func accessKeyOwner(accessKeyID: String) async throws(AWSError) -> String {
        try IAMAccessKey.owner(try await iam("GetAccessKeyLastUsed", [("AccessKeyId", accessKeyID)]))
    }

    /// Creates an IAM user (tests and tools). An existing name is `EntityAlreadyExists`.
    public func createUser(name: String) async throws(AWSError) {
        _ = try await iam("CreateUser", [("UserName", name)])
    }

    /// Creates an access key for the user and returns its metadata (tests and tools). The
    /// secret IAM returns once is dropped on purpose: nothing in Vigil should hold it.
    public func createAccessKey(userName: String) async throws(AWSError) -> IAMAccessKey {
        let root = try await iam("CreateAccessKey", [("UserName", userName)])
        guard let node = root.child("CreateAccessKeyResult")?.child("AccessKey"), let key = IAMAccessKey(node: node) else {
            throw AWSError(code: "invalid_response", message: "CreateAccessKey answer has no AccessKey")
        }
        return key
    }
}
