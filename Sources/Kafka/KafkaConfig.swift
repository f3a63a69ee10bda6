import CRdKafka

/// How to reach Kafka, plus any librdkafka property passed through unchanged
/// (TLS, SASL, tuning). Build it in code, or from `VIGIL_KAFKA_*` environment variables
/// (`VIGIL_KAFKA_SECURITY_PROTOCOL=SASL_SSL` sets `security.protocol`).
public struct KafkaConfig: Sendable, Equatable {
    /// Comma-separated `host:port` list (`bootstrap.servers`). Default `127.0.0.1:9092`.
    public var bootstrapServers: String
    /// `client.id`, shown in broker logs. Default `vigil`.
    public var clientID: String
    /// librdkafka properties applied after Vigil's defaults, so they win.
    public var properties: [String: String]

    /// A configuration with Vigil's defaults.
    public init(bootstrapServers: String = "127.0.0.1:9092", clientID: String = "vigil",
                properties: [String: String] = [:]) {
        self.bootstrapServers = bootstrapServers
        self.clientID = clientID
        self.properties = properties
    }

    /// Reads `VIGIL_BROKERS` and every `VIGIL_KAFKA_<PROPERTY>` (upper case, `_` for `.`)
    /// from `environment` on top of `base`.
    public static func fromEnvironment(_ environment: [String: String], base: KafkaConfig = KafkaConfig()) -> KafkaConfig {
        var config = base
        if let brokers = environment["VIGIL_BROKERS"], !brokers.isEmpty { config.bootstrapServers = brokers }
        for (name, value) in environment where name.hasPrefix("VIGIL_KAFKA_") {
            let property = String(name.dropFirst("VIGIL_KAFKA_".count).lowercased().map { $0 == "_" ? "." : $0 })
            config.properties[property] = value
        }
        return config
    }

    /// Property names whose values must never be logged.
    static func isSecret(_ property: String) -> Bool {
        property.contains("password") || property.contains("secret") || property.hasSuffix(".key")
            || property.contains("sasl.oauthbearer.config") || property.contains("ssl.key")
    }

    /// Builds an `rd_kafka_conf_t` from `defaults`, then these settings. The caller owns the result.
    func makeNativeConfig(defaults: [String: String]) throws(KafkaError) -> OpaquePointer {
        guard let conf = rd_kafka_conf_new() else { throw .configuration("cannot allocate configuration") }
        var merged = defaults
        merged["bootstrap.servers"] = bootstrapServers
        merged["client.id"] = clientID
        for (key, value) in properties { merged[key] = value }
        var errstr = [CChar](repeating: 0, count: 512)
        for key in merged.keys.sorted() {
            let value = merged[key]!
            if rd_kafka_conf_set(conf, key, value, &errstr, errstr.count) != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                let message = cString(errstr)
                let shown = KafkaConfig.isSecret(key) ? "<redacted>" : value
                throw .configuration("property \(key)=\(shown): \(message)")
            }
        }
        return conf
    }
}

