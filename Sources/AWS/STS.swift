import Foundation

// STS (Query protocol, API version 2011-06-15): which account the client's credentials belong
// to, so inventory read through them can be attributed to that account.

/// Who the credentials are: the answer of GetCallerIdentity.
public struct STSCallerIdentity: Sendable, Equatable {
    /// The 12-digit account id.
    public var account: String
    /// The ARN of the user or assumed role.
    public var arn: String
    /// The unique id of the calling entity.
    public var userID: String

    /// Makes an identity.
    public init(account: String, arn: String, userID: String) {
        self.account = account
        self.arn = arn
        self.userID = userID
    }

    /// From a `GetCallerIdentityResponse`; throws `invalid_response` without an `Account`.
    static func identity(_ root: XMLNode) throws(AWSError) -> STSCallerIdentity {
        let result = root.child("GetCallerIdentityResult") ?? root
        guard let account = result.text("Account") else {
            throw AWSError(code: "invalid_response", message: "GetCallerIdentity answer has no Account")
        }
        return STSCallerIdentity(account: account, arn: result.text("Arn") ?? "", userID: result.text("UserId") ?? "")
    }

    /// Parses a `GetCallerIdentityResponse` document; throws `invalid_response` when it is not
    /// one or names no account.
    public static func parseGetCallerIdentity(_ body: [UInt8]) throws(AWSError) -> STSCallerIdentity {
        try identity(try AWSClient.queryResult(body, action: "GetCallerIdentity"))
    }
}

extension AWSClient {
    /// The STS API version every call is made with.
    public static let stsAPIVersion = "2011-06-15"

    /// The account and identity of the client's credentials (GetCallerIdentity, which needs no
    /// permission). Sent to the regional STS endpoint.
    public func callerIdentity() async throws(AWSError) -> STSCallerIdentity {
        try STSCallerIdentity.identity(try await query(service: "sts", action: "GetCallerIdentity", version: Self.stsAPIVersion))
    }
}
