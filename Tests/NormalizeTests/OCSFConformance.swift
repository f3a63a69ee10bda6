import Foundation
import OCSF

/// One way an event departs from the pinned OCSF schema: where (a JSON path such as
/// `resources[0].owner.account.uid`) and what.
struct ConformanceProblem: Hashable, Sendable, CustomStringConvertible {
    var path: String
    var message: String

    var description: String { "\(path.isEmpty ? "<event>" : path): \(message)" }
}

/// The OCSF classes and objects Vigil emits, resolved from the published schema and pinned as
/// test data (`Fixtures/ocsf-schema/schema.json`, written by `scripts/ocsf-schema-pin`; see the
/// README beside it for the source and commit).
struct PinnedOCSFSchema: Sendable {
    enum Requirement: String, Sendable { case required, recommended, optional }

    struct Attribute: Sendable {
        var type: String
        var requirement: Requirement
        var isArray: Bool
        /// The profile that adds the attribute; it applies only when `metadata.profiles` names it.
        var profile: String?
    }

    struct Definition: Sendable {
        var name: String
        var attributes: [String: Attribute]
    }

    var version: String
    var classes: [Int64: Definition]
    var objects: [String: Definition]
    /// Each scalar type (`ip_t`, `timestamp_t`, ...) by its base: `string_t`, `integer_t`,
    /// `long_t`, `float_t`, `boolean_t`, `json_t` or `object`.
    var scalarBases: [String: String]
    /// Object types pinned attributes name but the file does not define (Vigil emits none).
    var unpinnedObjects: Set<String>

    struct FormatError: Error, CustomStringConvertible {
        var description: String
    }

    init(bytes: [UInt8]) throws {
        let document = try JSON.parse(bytes)
        guard let version = document["ocsf_version"]?.stringValue,
              let classes = document["classes"]?.objectValue,
              let objects = document["objects"]?.objectValue,
              let scalars = document["scalar_types"]?.objectValue
        else { throw FormatError(description: "schema.json lacks ocsf_version, classes, objects or scalar_types") }
        self.version = version
        self.scalarBases = scalars.compactMapValues(\.stringValue)
        self.unpinnedObjects = Set(document["unpinned_objects"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        var byUID: [Int64: Definition] = [:]
        for (uid, body) in classes {
            guard let number = Int64(uid) else { throw FormatError(description: "class key \(uid) is not a class_uid") }
            byUID[number] = try Self.definition(name: body["name"]?.stringValue ?? uid, body)
        }
        self.classes = byUID
        self.objects = try objects.reduce(into: [:]) { out, entry in
            out[entry.key] = try Self.definition(name: entry.key, entry.value)
        }
    }

    private static func definition(name: String, _ body: JSON) throws -> Definition {
        guard let attributes = body["attributes"]?.objectValue else {
            throw FormatError(description: "\(name) has no attributes")
        }
        var out: [String: Attribute] = [:]
        for (key, value) in attributes {
            guard let type = value["type"]?.stringValue,
                  let requirement = value["requirement"]?.stringValue.flatMap(Requirement.init(rawValue:))
            else { throw FormatError(description: "\(name).\(key) lacks a type or requirement") }
            out[key] = Attribute(type: type, requirement: requirement, isArray: value["is_array"]?.boolValue ?? false,
                                 profile: value["profile"]?.stringValue)
        }
        return Definition(name: name, attributes: out)
    }

    /// The pinned file from the test bundle.
    static func pinned() throws -> PinnedOCSFSchema {
        try PinnedOCSFSchema(bytes: fixture("ocsf-schema/schema.json"))
    }
}

/// Checks events against their OCSF class: required attributes present (at every level that is
/// present), present attributes known to the class or object and of the declared type, arrays
/// where the schema has arrays, and profile attributes only under a declared profile.
///
/// Two places are not checked: `unmapped` (OCSF's own bag for source fields) and the `vigil`
/// extension object documented in docs/sources.md.
struct OCSFValidator: Sendable {
    /// Top-level members whose contents are outside the schema.
    static let opaqueMembers: Set<String> = ["unmapped", "vigil"]
    /// Epoch milliseconds below this (1973-03-03) are taken for seconds or a unit slip.
    static let smallestMilliseconds: Int64 = 100_000_000_000

    var schema: PinnedOCSFSchema

    func validate(_ event: JSON) -> [ConformanceProblem] {
        var problems: [ConformanceProblem] = []
        guard let members = event.objectValue else {
            return [ConformanceProblem(path: "", message: "the event is not a JSON object")]
        }
        guard let uid = members["class_uid"]?.intValue else {
            return [ConformanceProblem(path: "class_uid", message: "missing or not an integer")]
        }
        guard let definition = schema.classes[uid] else {
            return [ConformanceProblem(path: "class_uid", message: "class \(uid) is not in the pinned OCSF \(schema.version) schema")]
        }
        let version = event.value(at: "metadata.version")?.stringValue
        if let version, version != schema.version {
            problems.append(ConformanceProblem(path: "metadata.version", message: "declares \(version), the pinned schema is \(schema.version)"))
        }
        let profiles = Set(event.value(at: "metadata.profiles")?.arrayValue?.compactMap(\.stringValue) ?? [])
        check(members, against: definition, kind: "class", path: "", profiles: profiles, topLevel: true, into: &problems)
        return problems
    }

    private func check(_ members: [String: JSON], against definition: PinnedOCSFSchema.Definition, kind: String, path: String,
                       profiles: Set<String>, topLevel: Bool, into problems: inout [ConformanceProblem]) {
        for (name, attribute) in definition.attributes.sorted(by: { $0.key < $1.key }) where attribute.requirement == .required {
            if let profile = attribute.profile, !profiles.contains(profile) { continue }
            if members[name] == nil || members[name] == .null {
                let because = attribute.profile.map { " (profile \($0))" } ?? ""
                problems.append(ConformanceProblem(path: join(path, name), message: "missing required attribute of \(kind) \(definition.name)\(because)"))
            }
        }
        for (name, value) in members.sorted(by: { $0.key < $1.key }) {
            let here = join(path, name)
            if topLevel, Self.opaqueMembers.contains(name) {
                if value.objectValue == nil {
                    problems.append(ConformanceProblem(path: here, message: "must be an object"))
                }
                continue
            }
            guard let attribute = definition.attributes[name] else {
                problems.append(ConformanceProblem(path: here, message: "not an attribute of \(kind) \(definition.name)"))
                continue
            }
            if let profile = attribute.profile, !profiles.contains(profile) {
                problems.append(ConformanceProblem(path: here, message: "belongs to profile \(profile), which metadata.profiles does not declare"))
            }
            checkValue(value, attribute: attribute, path: here, profiles: profiles, into: &problems)
        }
    }

    private func checkValue(_ value: JSON, attribute: PinnedOCSFSchema.Attribute, path: String, profiles: Set<String>,
                            into problems: inout [ConformanceProblem]) {
        if attribute.isArray {
            guard let items = value.arrayValue else {
                problems.append(ConformanceProblem(path: path, message: "expected an array of \(attribute.type), found \(kindName(value))"))
                return
            }
            for (index, item) in items.enumerated() {
                checkSingle(item, type: attribute.type, path: "\(path)[\(index)]", profiles: profiles, into: &problems)
            }
        } else {
            if value.arrayValue != nil, schema.scalarBases[attribute.type] != "json_t" {
                problems.append(ConformanceProblem(path: path, message: "expected a single \(attribute.type), found an array"))
                return
            }
            checkSingle(value, type: attribute.type, path: path, profiles: profiles, into: &problems)
        }
    }

    private func checkSingle(_ value: JSON, type: String, path: String, profiles: Set<String>, into problems: inout [ConformanceProblem]) {
        if let base = schema.scalarBases[type] {
            let fits: Bool
            switch (base, value) {
            case ("json_t", _): fits = true
            case ("object", .object): fits = true
            case ("string_t", .string): fits = true
            case ("integer_t", .int), ("long_t", .int): fits = true
            case ("float_t", .double), ("float_t", .int): fits = true
            case ("boolean_t", .bool): fits = true
            default: fits = false
            }
            if !fits {
                problems.append(ConformanceProblem(path: path, message: "expected \(type), found \(kindName(value))"))
            } else if type == "timestamp_t", let millis = value.intValue, millis > 0, millis < Self.smallestMilliseconds {
                problems.append(ConformanceProblem(path: path, message: "timestamp_t \(millis) looks like seconds, not epoch milliseconds"))
            }
            return
        }
        guard let members = value.objectValue else {
            problems.append(ConformanceProblem(path: path, message: "expected object \(type), found \(kindName(value))"))
            return
        }
        guard let object = schema.objects[type] else {
            let why = schema.unpinnedObjects.contains(type) ? "is not pinned; add it to OBJECTS in scripts/ocsf-schema-pin" : "is unknown"
            problems.append(ConformanceProblem(path: path, message: "object type \(type) \(why)"))
            return
        }
        check(members, against: object, kind: "object", path: path, profiles: profiles, topLevel: false, into: &problems)
    }

    private func join(_ path: String, _ name: String) -> String { path.isEmpty ? name : path + "." + name }

    private func kindName(_ value: JSON) -> String {
        switch value {
        case .null: "null"
        case .bool: "a boolean"
        case .int: "an integer"
        case .double: "a float"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}
