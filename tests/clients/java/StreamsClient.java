// Kafka Streams 4.4 through the gateway, for tests/e2e_kafka.rs: produces --count records to
// --input (creating --input and --output), runs a stateless Streams application (values upper-cased into --output) with the given
// group.protocol, reads --output back, and prints one JSON line: {"ok", "produced", "copied",
// "state", "error"}. Exit 0 when every record was copied, 1 otherwise.
//
// Usage: StreamsClient --bootstrap HOST:PORT --input T --output T --app-id ID --count N
//        --group-protocol classic|streams --timeout SECONDS
//        [--sasl-mechanism M --username U --password P]

import java.nio.file.Files;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;

public class StreamsClient {
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

    /** Connection properties every client of the run shares (bootstrap, SASL). */
    static Properties common(Map<String, String> a) {
        Properties p = new Properties();
        p.put("bootstrap.servers", need(a, "bootstrap"));
        if (a.containsKey("sasl-mechanism")) {
            String mech = a.get("sasl-mechanism");
            String module = mech.startsWith("SCRAM")
                ? "org.apache.kafka.common.security.scram.ScramLoginModule"
                : "org.apache.kafka.common.security.plain.PlainLoginModule";
            p.put("security.protocol", "SASL_PLAINTEXT");
            p.put("sasl.mechanism", mech);
            p.put("sasl.jaas.config", module + " required username=\"" + need(a, "username")
                + "\" password=\"" + need(a, "password") + "\";");
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
        int count = Integer.parseInt(need(a, "count"));
        long deadline = System.nanoTime() + Long.parseLong(need(a, "timeout")) * 1_000_000_000L;
        String input = need(a, "input"), output = need(a, "output");

        try (org.apache.kafka.clients.admin.Admin admin =
                 org.apache.kafka.clients.admin.Admin.create(common(a))) {
            List<org.apache.kafka.clients.admin.NewTopic> topics = new ArrayList<>();
            for (String t : new String[] {input, output})
                topics.add(new org.apache.kafka.clients.admin.NewTopic(t, 1, (short) 1));
            try {
                admin.createTopics(topics).all().get();
            } catch (java.util.concurrent.ExecutionException e) {
                if (!(e.getCause() instanceof org.apache.kafka.common.errors.TopicExistsException)) throw e;
            }
        }

        Properties pp = common(a);
        pp.put("key.serializer", StringSerializer.class.getName());
        pp.put("value.serializer", StringSerializer.class.getName());
        int produced = 0;
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
            for (int i = 0; i < count; i++) {
                producer.send(new ProducerRecord<>(input, "k" + i, "value-" + i)).get();
                produced++;
            }
        }

        Properties sp = common(a);
        sp.put(StreamsConfig.APPLICATION_ID_CONFIG, need(a, "app-id"));
        sp.put("group.protocol", need(a, "group-protocol"));
        sp.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class.getName());
        sp.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class.getName());
        sp.put(StreamsConfig.STATE_DIR_CONFIG, Files.createTempDirectory("kgw-streams").toString());
        sp.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, "200");
        sp.put("consumer.auto.offset.reset", "earliest");
        StreamsBuilder builder = new StreamsBuilder();
        builder.<String, String>stream(input).mapValues(v -> v.toUpperCase()).to(output);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        KafkaStreams streams = new KafkaStreams(builder.build(), sp);
        streams.setUncaughtExceptionHandler(e -> {
            failure.compareAndSet(null, e);
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.start();

        Properties cp = common(a);
        cp.put("group.id", need(a, "app-id") + "-reader");
        cp.put("auto.offset.reset", "earliest");
        cp.put("key.deserializer", StringDeserializer.class.getName());
        cp.put("value.deserializer", StringDeserializer.class.getName());
        Set<String> copied = new HashSet<>();
        List<String> wrong = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
            consumer.subscribe(Collections.singletonList(output));
            while (copied.size() < count && System.nanoTime() < deadline && failure.get() == null) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                    String want = "VALUE-" + r.key().substring(1);
                    if (!want.equals(r.value())) wrong.add(r.key() + "=" + r.value());
                    copied.add(r.key());
                }
            }
        }
        String state = streams.state().toString();
        streams.close(Duration.ofSeconds(10));
        Throwable f = failure.get();
        String error = f == null ? null : f.getClass().getSimpleName() + ": " + f.getMessage()
            + (f.getCause() == null ? "" : " / " + f.getCause().getMessage());
        boolean ok = f == null && copied.size() == count && wrong.isEmpty();
        System.out.println("{\"ok\": " + ok + ", \"produced\": " + produced + ", \"copied\": "
            + copied.size() + ", \"wrong\": " + wrong.size() + ", \"state\": " + quote(state)
            + ", \"error\": " + quote(error) + "}");
        System.out.flush();
        Runtime.getRuntime().halt(ok ? 0 : 1);
    }
}
