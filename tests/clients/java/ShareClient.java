// A share-group member (KIP-932, Java client 4.4) for tests/e2e_kafka.rs: optionally produces
// --produce records to --topic, then consumes with a KafkaShareConsumer in --group with explicit
// acknowledgements until --count distinct records are accepted or --timeout seconds pass. With
// --release-even true, a record at an even offset is released the first time it is delivered, so
// the broker delivers it again (delivery count 2) before it is accepted. Authorization errors
// raised by poll are counted and polling goes on, as an application that logs them would.
// Prints one JSON line: {"produced", "accepted", "released", "redelivered", "auth_errors",
// "last_error"}. Exit 0 when --count records were accepted, 1 otherwise.
//
// Usage: ShareClient --bootstrap HOST:PORT --topic T --group G --count N --timeout SECONDS
//        [--produce N] [--release-even true] [--max-auth-errors N]
//        [--sasl-mechanism M --username U --password P]

import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;

import org.apache.kafka.clients.consumer.AcknowledgeType;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaShareConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.errors.AuthorizationException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class ShareClient {
    static Map<String, String> args(String[] argv) {
        Map<String, String> a = new HashMap<>();
        for (int i = 0; i + 1 < argv.length; i += 2) {
            if (!argv[i].startsWith("--")) throw new IllegalArgumentException("unexpected " + argv[i]);
            a.put(argv[i].substring(2), argv[i + 1]);
        }
        return a;
    }

    static String need(Map<String, String> a, String k) {
        String v = a.get(k);
        if (v == null) throw new IllegalArgumentException("missing --" + k);
        return v;
    }

    static Properties common(Map<String, String> a) {
        Properties p = new Properties();
        p.put("bootstrap.servers", need(a, "bootstrap"));
        if (a.containsKey("sasl-mechanism")) {
            p.put("security.protocol", "SASL_PLAINTEXT");
            p.put("sasl.mechanism", a.get("sasl-mechanism"));
            p.put("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required username=\""
                + need(a, "username") + "\" password=\"" + need(a, "password") + "\";");
        }
        return p;
    }

    static String quote(String s) {
        if (s == null) return "null";
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.append('"').toString();
    }

    public static void main(String[] argv) throws Exception {
        Map<String, String> a = args(argv);
        String topic = need(a, "topic");
        int count = Integer.parseInt(need(a, "count"));
        int maxAuthErrors = Integer.parseInt(a.getOrDefault("max-auth-errors", "1000000"));
        boolean releaseEven = Boolean.parseBoolean(a.getOrDefault("release-even", "false"));
        long deadline = System.nanoTime() + Long.parseLong(need(a, "timeout")) * 1_000_000_000L;

        int produced = 0;
        if (a.containsKey("produce")) {
            Properties pp = common(a);
            pp.put("key.serializer", StringSerializer.class.getName());
            pp.put("value.serializer", StringSerializer.class.getName());
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
                for (int i = 0; i < Integer.parseInt(a.get("produce")); i++) {
                    producer.send(new ProducerRecord<>(topic, "k" + i, "value-" + i)).get();
                    produced++;
                }
            }
        }

        Properties cp = common(a);
        cp.put("group.id", need(a, "group"));
        cp.put("key.deserializer", StringDeserializer.class.getName());
        cp.put("value.deserializer", StringDeserializer.class.getName());
        cp.put("share.acknowledgement.mode", "explicit");
        Set<String> accepted = new HashSet<>();
        int released = 0, redelivered = 0, authErrors = 0;
        String lastError = null;
        try (KafkaShareConsumer<String, String> consumer = new KafkaShareConsumer<>(cp)) {
            consumer.subscribe(List.of(topic));
            while (accepted.size() < count && authErrors < maxAuthErrors && System.nanoTime() < deadline) {
                try {
                    for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                        short delivery = r.deliveryCount().orElse((short) 1);
                        if (delivery > 1) redelivered++;
                        if (releaseEven && delivery == 1 && r.offset() % 2 == 0) {
                            consumer.acknowledge(r, AcknowledgeType.RELEASE);
                            released++;
                        } else {
                            consumer.acknowledge(r, AcknowledgeType.ACCEPT);
                            accepted.add(r.partition() + "/" + r.offset());
                        }
                    }
                    consumer.commitSync();
                } catch (AuthorizationException e) {
                    authErrors++;
                    lastError = e.getClass().getSimpleName() + ": " + e.getMessage();
                }
            }
        } catch (Exception e) {
            lastError = e.getClass().getSimpleName() + ": " + e.getMessage();
        }
        System.out.println("{\"produced\": " + produced + ", \"accepted\": " + accepted.size()
            + ", \"released\": " + released + ", \"redelivered\": " + redelivered
            + ", \"auth_errors\": " + authErrors + ", \"last_error\": " + quote(lastError) + "}");
        System.exit(accepted.size() >= count ? 0 : 1);
    }
}
