import OCSF

/// What the messages of sshd, sudo, su, PAM and shadow-utils say, as OCSF facts, and the event
/// built from them. Only messages listed here become events; docs/sources.md has the table.
enum SyslogMessages {
    /// The meaning of one recognized message.
    struct Facts {
        var ocsfClass: OCSFClass
        var activityID: Int64
        var activityName: String
        var status: OCSFStatus = .unknown
        var statusDetail: String?
        /// The account authenticated, switched to or changed (OCSF `user`).
        var user: String?
        var userUID: String?
        var userGroups: [String] = []
        /// Who acted, when the line says (`sudo`/`su` invoker, `passwd` changer).
        var actor: String?
        var sourceIP: String?
        var sourcePort: Int64?
        /// sshd's method (`password`, `publickey`, ...).
        var authMethod: String?
        var terminal: String?
        var isRemote: Bool?
        var count: Int64?
        var unmapped: [String: JSON] = [:]
        var vendor: String

        init(_ ocsfClass: OCSFClass, _ activityID: Int64, _ activityName: String, vendor: String) {
            self.ocsfClass = ocsfClass
            self.activityID = activityID
            self.activityName = activityName
            self.vendor = vendor
        }
    }

    static let sshdApps: Set<String> = ["sshd", "sshd-session"]
    static let shadowApps: Set<String> = ["useradd", "userdel", "usermod", "groupadd", "groupdel", "groupmod", "passwd", "chpasswd", "gpasswd"]
    /// PAM services whose session lines are logins; cron, systemd and the like are skipped.
    static let loginServices: Set<String> = ["sshd", "login", "su", "su-l", "sudo", "sudo-i"]

    /// The facts of a message from `app`, or `nil` when it is not one Vigil maps.
    static func facts(app: String?, message: Substring) -> Facts? {
        guard let app else { return nil }
        var text = message
        // rsyslog folds repeats: "message repeated 3 times: [ Failed password for root ...]".
        var count: Int64?
        if text.hasPrefix("message repeated "), let open = text.firstRange(of: ": [ "), text.hasSuffix("]") {
            let number = text[text.index(text.startIndex, offsetBy: 17)..<open.lowerBound].prefix(while: \.isASCIIDigit)
            guard let repeated = Int64(number) else { return nil }
            count = repeated
            text = text[open.upperBound..<text.index(before: text.endIndex)]
            while text.hasSuffix(" ") { text = text.dropLast() }
        }
        var facts: Facts?
        if text.hasPrefix("pam_unix(") {
            facts = pam(text)
        } else if sshdApps.contains(app) {
            facts = sshd(text)
        } else if app == "sudo" {
            facts = sudo(text)
        } else if app == "su" {
            facts = su(text)
        } else if shadowApps.contains(app) {
            facts = shadow(text)
        }
        if let count { facts?.count = count }
        return facts
    }

    // MARK: sshd (OpenSSH auth.c and packet.c messages)

    static func sshd(_ text: Substring) -> Facts? {
        var facts: Facts
        if let rest = text.dropPrefix("Accepted ") ?? text.dropPrefix("Failed ") {
            let accepted = text.hasPrefix("Accepted ")
            // "<method> for [invalid user ]<user> from <ip> port <port> ssh2[: <key type> <fingerprint>]"
            guard let forRange = rest.firstRange(of: " for ") else { return nil }
            let method = rest[..<forRange.lowerBound]
            var who = rest[forRange.upperBound...]
            let invalid = who.hasPrefix("invalid user ")
            if invalid { who = who.dropFirst("invalid user ".count) }
            guard !method.isEmpty, !method.contains(" "), let (user, peer) = splitFrom(who), let address = endpoint(peer) else { return nil }
            facts = Facts(.authentication, 1, "Logon", vendor: "OpenSSH")
            facts.status = accepted ? .success : .failure
            facts.statusDetail = accepted ? nil : invalid ? "Invalid user" : "Failed \(method)"
            facts.user = user
            facts.authMethod = String(method)
            (facts.sourceIP, facts.sourcePort) = (address.ip, address.port)
            if let key = address.trailer.dropPrefix(": ") {
                let parts = key.split(separator: " ", maxSplits: 1)
                if parts.count == 2 {
                    facts.unmapped["key_type"] = .string(String(parts[0]))
                    facts.unmapped["key_fingerprint"] = .string(String(parts[1]))
                }
            }
        } else if let rest = text.dropPrefix("Invalid user ") {
            // One per connection, before any "Failed ... for invalid user" attempts: Other, so
            // each failed attempt is one Logon failure and a scan is not counted twice.
            guard let (user, peer) = splitFrom(rest), let address = endpoint(peer) else { return nil }
            facts = Facts(.authentication, 99, "Invalid User", vendor: "OpenSSH")
            facts.status = .failure
            facts.statusDetail = "Invalid user"
            facts.user = user.isEmpty ? nil : user
            (facts.sourceIP, facts.sourcePort) = (address.ip, address.port)
        } else if let rest = text.dropPrefix("Disconnected from ") ?? text.dropPrefix("Connection closed by ") {
            var body = rest
            let preauth = body.hasSuffix(" [preauth]")
            if preauth { body = body.dropLast(" [preauth]".count) }
            var user: String?
            var qualifier: String?
            for prefix in ["user ", "invalid user ", "authenticating user "] where body.hasPrefix(prefix) {
                qualifier = String(prefix.dropLast())
                body = body.dropFirst(prefix.count)
            }
            // "<user> <ip> port <port>": the address is the last three words.
            let words = body.split(separator: " ", omittingEmptySubsequences: false)
            guard words.count >= 3, words[words.count - 2] == "port" else { return nil }
            if qualifier != nil {
                guard words.count >= 4 else { return nil }
                user = words[..<(words.count - 3)].joined(separator: " ")
            } else if words.count != 3 {
                return nil
            }
            guard let address = endpoint(words[(words.count - 3)...].joined(separator: " ")[...]), address.trailer.isEmpty else { return nil }
            if preauth || qualifier == "invalid user" || qualifier == "authenticating user" {
                // The connection ended before anyone logged in: no session to log off.
                facts = Facts(.authentication, 99, "Preauth Disconnect", vendor: "OpenSSH")
                facts.statusDetail = qualifier
            } else {
                facts = Facts(.authentication, 2, "Logoff", vendor: "OpenSSH")
                facts.status = .success
            }
            facts.user = user
            (facts.sourceIP, facts.sourcePort) = (address.ip, address.port)
        } else {
            return nil
        }
        facts.isRemote = true
        return facts
    }

    /// `<user> from <peer>`, splitting at the last " from " (user names can hold spaces in
    /// "Invalid user" lines, peers cannot).
    static func splitFrom(_ text: Substring) -> (String, Substring)? {
        guard let range = text.ranges(of: " from ").last else { return nil }
        return (String(text[..<range.lowerBound]), text[range.upperBound...])
    }

    /// `<ip>[ port <n>][ <trailer>]`: the address must be an IP literal.
    static func endpoint(_ text: Substring) -> (ip: String, port: Int64?, trailer: Substring)? {
        let ipText = text.prefix(while: { $0 != " " })
        guard IPAddress.isLiteral(String(ipText)) else { return nil }
        var rest = text.dropFirst(ipText.count)
        var port: Int64?
        if let afterPort = rest.dropPrefix(" port ") {
            let digits = afterPort.prefix(while: \.isASCIIDigit)
            guard let value = Int64(digits), value <= 65_535, digits.count <= 5 else { return nil }
            port = value
            rest = afterPort.dropFirst(digits.count)
        }
        // "ssh2" (and the key after it) ends Accepted/Failed lines.
        if let afterProtocol = rest.dropPrefix(" ssh2") { rest = afterProtocol }
        return (String(ipText), port, rest)
    }

    // MARK: PAM

    /// `pam_unix(<service>:session): session opened for user <u>[(uid=N)] by [<v>](uid=M)`,
    /// `... session closed for user <u>`, `pam_unix(<service>:chpasswd): password changed for <u>`.
    static func pam(_ text: Substring) -> Facts? {
        guard let close = text.firstIndex(of: ")"), let colon = text[..<close].firstIndex(of: ":") else { return nil }
        let service = String(text[text.index(text.startIndex, offsetBy: 9)..<colon])
        let kind = text[text.index(after: colon)..<close]
        var rest = text[text.index(after: close)...]
        guard rest.hasPrefix(": ") else { return nil }
        rest = rest.dropFirst(2)
        if kind == "chpasswd", let user = rest.dropPrefix("password changed for ") {
            guard !user.isEmpty, !user.contains(" ") else { return nil }
            var facts = Facts(.accountChange, 3, "Password Change", vendor: "Linux-PAM")
            facts.status = .success
            facts.user = String(user)
            facts.unmapped["pam_service"] = .string(service)
            return facts
        }
        guard kind == "session", loginServices.contains(service) else { return nil }
        var facts: Facts
        var who: Substring
        if let opened = rest.dropPrefix("session opened for user ") {
            facts = Facts(.authentication, 99, "Session Opened", vendor: "Linux-PAM")
            who = opened
            if let by = who.firstRange(of: " by ") {
                // "by alice(uid=1000)" or "by (uid=0)": the invoker, when named.
                let actor = who[by.upperBound...].prefix(while: { $0 != "(" })
                if !actor.isEmpty { facts.actor = String(actor) }
                who = who[..<by.lowerBound]
            }
        } else if let closed = rest.dropPrefix("session closed for user ") {
            facts = Facts(.authentication, 99, "Session Closed", vendor: "Linux-PAM")
            who = closed
        } else {
            return nil
        }
        // "alice(uid=1000)" (Linux-PAM 1.4+) or "alice".
        let name = who.prefix(while: { $0 != "(" && $0 != " " })
        guard !name.isEmpty else { return nil }
        if let uid = who.dropFirst(name.count).dropPrefix("(uid=")?.prefix(while: \.isASCIIDigit), !uid.isEmpty {
            facts.userUID = String(uid)
        }
        facts.status = .success
        facts.user = String(name)
        facts.isRemote = service == "sshd" ? true : nil
        facts.unmapped["pam_service"] = .string(service)
        return facts
    }

    // MARK: sudo

    /// `<user> : [<problem> ; ]TTY=<tty> ; PWD=<dir> ; USER=<target> ; [GROUP=... ; ][ENV=... ; ]COMMAND=<command>`
    static func sudo(_ text: Substring) -> Facts? {
        var body = text
        while body.hasPrefix(" ") { body = body.dropFirst() }
        guard let separator = body.firstRange(of: " : ") else { return nil }
        let invoker = body[..<separator.lowerBound]
        guard !invoker.isEmpty, !invoker.contains(" ") else { return nil }
        var rest = body[separator.upperBound...]
        var values: [String: String] = [:]
        var problem: String?
        // COMMAND is last and may itself contain " ; ".
        if let command = rest.firstRange(of: "COMMAND=") {
            values["COMMAND"] = String(rest[command.upperBound...])
            rest = rest[..<command.lowerBound]
        }
        for part in rest.split(separator: " ; ") {
            var trimmed = part
            while let first = trimmed.first, first == " " || first == ";" { trimmed = trimmed.dropFirst() }
            while let last = trimmed.last, last == " " || last == ";" { trimmed = trimmed.dropLast() }
            guard !trimmed.isEmpty else { continue }
            if let equals = trimmed.firstIndex(of: "="), trimmed[..<equals].allSatisfy({ $0.isUppercase || $0 == "_" }) {
                values[String(trimmed[..<equals])] = String(trimmed[trimmed.index(after: equals)...])
            } else if problem == nil {
                problem = String(trimmed)
            } else {
                return nil
            }
        }
        guard values["COMMAND"] != nil || values["USER"] != nil else { return nil }
        var facts = Facts(.authentication, 99, "Sudo", vendor: "Sudo")
        facts.status = problem == nil ? .success : .failure
        facts.statusDetail = problem
        facts.actor = String(invoker)
        // sudo's default target is root when the line names none.
        facts.user = values["USER"] ?? "root"
        facts.terminal = values["TTY"]
        facts.unmapped["command"] = values["COMMAND"].map(JSON.string)
        facts.unmapped["pwd"] = values["PWD"].map(JSON.string)
        facts.unmapped["group"] = values["GROUP"].map(JSON.string)
        facts.unmapped["env"] = values["ENV"].map(JSON.string)
        facts.unmapped["tsid"] = values["TSID"].map(JSON.string)
        return facts
    }

    // MARK: su

    /// util-linux: `(to <target>) <user> on <tty>`, `FAILED SU (to <target>) <user> on <tty>`;
    /// shadow-utils: `Successful su for <target> by <user>`, `FAILED su for <target> by <user>`.
    static func su(_ text: Substring) -> Facts? {
        var facts = Facts(.authentication, 99, "Su", vendor: "util-linux")
        if let rest = text.dropPrefix("FAILED SU (to ") ?? text.dropPrefix("(to ") {
            guard let close = rest.firstRange(of: ") "), let on = rest.ranges(of: " on ").last,
                  close.upperBound <= on.lowerBound else { return nil }
            facts.user = String(rest[..<close.lowerBound])
            facts.actor = String(rest[close.upperBound..<on.lowerBound])
            facts.terminal = String(rest[on.upperBound...])
            facts.status = text.hasPrefix("FAILED") ? .failure : .success
        } else if let rest = text.dropPrefix("Successful su for ") ?? text.dropPrefix("FAILED su for ") {
            guard let by = rest.firstRange(of: " by ") else { return nil }
            facts.vendor = "shadow-utils"
            facts.user = String(rest[..<by.lowerBound])
            facts.actor = String(rest[by.upperBound...])
            facts.status = text.hasPrefix("FAILED") ? .failure : .success
        } else {
            return nil
        }
        guard facts.user?.isEmpty == false, facts.actor?.isEmpty == false else { return nil }
        if facts.status == .failure { facts.statusDetail = "FAILED SU" }
        return facts
    }

    // MARK: shadow-utils

    /// useradd/userdel/usermod/groupadd/groupdel/passwd/gpasswd messages about one account.
    static func shadow(_ text: Substring) -> Facts? {
        func change(_ id: Int64, _ name: String) -> Facts {
            var facts = Facts(.accountChange, id, name, vendor: "shadow-utils")
            facts.status = .success
            return facts
        }
        if let rest = text.dropPrefix("new user: ") {
            // "name=deploy, UID=1001, GID=1001, home=/home/deploy, shell=/bin/bash, from=/dev/pts/0"
            let fields = keyValues(rest)
            guard let name = fields["name"] else { return nil }
            var facts = change(1, "Create")
            facts.user = name
            facts.userUID = fields["UID"]
            for key in ["GID", "home", "shell", "from"] { facts.unmapped[key.lowercased()] = fields[key].map(JSON.string) }
            return facts
        }
        if let rest = text.dropPrefix("delete user '"), let name = quoted(rest) {
            var facts = change(6, "Delete")
            facts.user = name
            return facts
        }
        if let rest = text.dropPrefix("lock user '"), let name = quoted(rest) {
            var facts = change(9, "Lock")
            facts.user = name
            return facts
        }
        if let rest = text.dropPrefix("unlock user '"), let name = quoted(rest) {
            var facts = change(12, "Unlock")
            facts.user = name
            return facts
        }
        if let rest = text.dropPrefix("password for '"), let name = quoted(rest) {
            // "password for 'deploy' changed by 'root'"
            var facts = change(3, "Password Change")
            facts.user = name
            if let by = rest.firstRange(of: "' changed by '") { facts.actor = quoted(rest[by.upperBound...]) }
            return facts
        }
        // "add 'deploy' to group 'sudo'" (not "... to shadow group ...", which repeats it for gshadow).
        for (prefix, middle, id, label) in [("add '", "' to group '", Int64(99), "Add To Group"),
                                            ("delete '", "' from group '", Int64(99), "Remove From Group")] {
            if let rest = text.dropPrefix(prefix), let split = rest.firstRange(of: middle) {
                let user = rest[..<split.lowerBound]
                guard !user.isEmpty, !user.contains("'"), let group = quoted(rest[split.upperBound...]) else { return nil }
                var facts = change(id, label)
                facts.user = String(user)
                facts.userGroups = [group]
                return facts
            }
        }
        return nil
    }

    /// `key=value, key=value` (shadow-utils' "new user" line).
    static func keyValues(_ text: Substring) -> [String: String] {
        var fields: [String: String] = [:]
        for part in text.split(separator: ",") {
            let item = part.drop(while: { $0 == " " })
            guard let equals = item.firstIndex(of: "=") else { continue }
            fields[String(item[..<equals])] = String(item[item.index(after: equals)...])
        }
        return fields
    }

    /// The text up to the next `'` (the opening quote already consumed), non-empty.
    static func quoted(_ text: Substring) -> String? {
        guard let end = text.firstIndex(of: "'"), end > text.startIndex else { return nil }
        return String(text[..<end])
    }

    // MARK: Event

    static func event(_ facts: Facts, line: SyslogLine, uid: String) -> JSON {
        let app = line.app ?? "syslog"
        var event = OCSFEvent.base(
            class: facts.ocsfClass, activityID: facts.activityID, activityName: facts.activityName, time: line.time,
            severity: .informational, status: facts.status, uid: uid, product: app, vendor: facts.vendor,
            logName: line.priority.map { facilityName($0 / 8) }, originalTime: line.timeText
        )
        event.set("metadata.profiles", ["host"])
        if let statusDetail = facts.statusDetail { event["status_detail"] = .string(statusDetail) }
        if !line.message.isEmpty { event["message"] = .string(String(line.message)) }
        if let count = facts.count { event["count"] = .int(count) }
        if let host = line.host {
            event["device"] = .object(["hostname": .string(host), "type_id": 0, "type": "Unknown"])
        }

        var actor: [String: JSON] = [:]
        var process: [String: JSON] = ["name": .string(app)]
        if let pid = line.pid, let number = Int64(pid) { process["pid"] = .int(number) }
        actor["process"] = .object(process)
        if let name = facts.actor { actor["user"] = .object(["name": .string(name)]) }
        event["actor"] = .object(actor)

        var user: [String: JSON] = [:]
        user["name"] = facts.user.map(JSON.string)
        user["uid"] = facts.userUID.map(JSON.string)
        if !facts.userGroups.isEmpty { user["groups"] = .array(facts.userGroups.map { .object(["name": .string($0)]) }) }
        if !user.isEmpty { event["user"] = .object(user) }

        if let ip = facts.sourceIP {
            var source: [String: JSON] = ["ip": .string(ip)]
            source["port"] = facts.sourcePort.map(JSON.int)
            event["src_endpoint"] = .object(source)
        }
        if facts.ocsfClass == .authentication {
            // The host that logged the line is the one being logged in to.
            if let host = line.host { event["dst_endpoint"] = .object(["hostname": .string(host)]) }
            event["service"] = .object(["name": .string(app)])
            if let isRemote = facts.isRemote { event["is_remote"] = .bool(isRemote) }
            if let method = facts.authMethod {
                // OCSF's auth protocols (NTLM, Kerberos, SAML, ...) have no SSH method: Other,
                // with sshd's own name.
                event["auth_protocol_id"] = 99
                event["auth_protocol"] = .string(method)
            }
            if let terminal = facts.terminal { event["session"] = .object(["terminal": .string(terminal)]) }
        }

        var unmapped = facts.unmapped
        var syslog: [String: JSON] = [:]
        if let priority = line.priority {
            syslog["facility"] = .int(Int64(priority / 8))
            syslog["severity"] = .int(Int64(priority % 8))
        }
        syslog["msgid"] = line.msgID.map(JSON.string)
        syslog["structured_data"] = line.structuredData.map(JSON.object)
        if !syslog.isEmpty { unmapped["syslog"] = .object(syslog) }
        if !unmapped.isEmpty { event["unmapped"] = .object(unmapped) }
        return event
    }

    /// RFC 5424 facility names (`auth` 4, `authpriv` 10, ...).
    static func facilityName(_ facility: Int) -> String {
        let names = ["kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
                     "ftp", "ntp", "security", "console", "solaris-cron", "local0", "local1", "local2", "local3",
                     "local4", "local5", "local6", "local7"]
        return names.indices.contains(facility) ? names[facility] : "facility\(facility)"
    }
}

extension Substring {
    /// The rest after `prefix`, or `nil` when the text does not start with it.
    fileprivate func dropPrefix(_ prefix: String) -> Substring? {
        hasPrefix(prefix) ? dropFirst(prefix.count) : nil
    }
}

extension Character {
    /// `0`...`9` only (`isNumber` also accepts other scripts' digits and fractions).
    fileprivate var isASCIIDigit: Bool { self >= "0" && self <= "9" }
}
