// librdkafka for Swift. Swift cannot call C variadic functions, so rd_kafka_producev is
// wrapped here in small static inline functions; nothing else is added.
#ifndef VIGIL_CRDKAFKA_SHIM_H
#define VIGIL_CRDKAFKA_SHIM_H

#include <librdkafka/rdkafka.h>

/// Produces one message (payload and key copied). On success librdkafka owns `headers`;
/// on failure the caller still owns them. `timestamp` 0 means "now".
static inline rd_kafka_resp_err_t vigil_produce(rd_kafka_t *rk, const char *topic, int32_t partition,
                                                const void *payload, size_t payload_len,
                                                const void *key, size_t key_len,
                                                int64_t timestamp, rd_kafka_headers_t *headers,
                                                void *opaque) {
    if (headers) {
        return rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_VALUE((void *)payload, payload_len),
                                 RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_TIMESTAMP(timestamp),
                                 RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    }
    return rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_VALUE((void *)payload, payload_len),
                             RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_TIMESTAMP(timestamp),
                             RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
}

#endif
