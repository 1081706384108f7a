// Kafka Java-client workloads for the gateway's end-to-end tests.
//
// Same subcommands, flags and JSON output as tests/clients/workload.py:
//   roundtrip, admin, produce-latency, throughput, metadata (as workload.py), and txn
// Exactly ONE JSON object is printed as the LAST line of stdout; diagnostics go
// to stderr. Exit code 0 = success, 1 = verification failed, 2 = usage error,
// 3 = unexpected exception.
//
// Compiled by scripts/install-deps.sh (javac, no build tool) against the
// kafka-clients 3.9.1 jar; run as
//   java -cp "$KGW_JAVA_CP" WorkloadClient roundtrip --bootstrap 127.0.0.1:9092 --topic t --count 10000 --group g
//
// Security flags:
//   --tls-ca PEM                  -> SSL, ssl.truststore.type=PEM + ssl.truststore.location
//   --tls                         -> SSL with the JVM's default trust store
//   --client-cert PEM --client-key PEM -> ssl.keystore.type=PEM with the chain and key
//                                    (key must be PKCS#8: "BEGIN PRIVATE KEY")
//   --no-hostname-verify          -> ssl.endpoint.identification.algorithm=""
//   --sasl-mechanism M --username U --password P -> SASL_PLAINTEXT / SASL_SSL (PLAIN, SCRAM-SHA-256/512)
//   --oauth-token T               -> OAUTHBEARER via StaticTokenCallbackHandler below
//   --sasl-mechanism GSSAPI --principal P (--keytab K | --ccache C) [--service-name kafka]
//     [--krb5-conf F]             -> Kerberos with Krb5LoginModule, from a keytab or a credential
//                                    cache; --krb5-conf sets java.security.krb5.conf (read once per
//                                    JVM). The service host is the broker's host as the client
//                                    resolves it (a reverse lookup for an IP address).
//   --extra K=V / --producer-extra / --consumer-extra / --admin-extra -> raw client properties

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import javax.security.auth.callback.Callback;
import javax.security.auth.callback.UnsupportedCallbackException;
import javax.security.auth.login.AppConfigurationEntry;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.security.auth.AuthenticateCallbackHandler;
import org.apache.kafka.common.security.auth.SaslExtensions;
import org.apache.kafka.common.security.auth.SaslExtensionsCallback;
import org.apache.kafka.common.security.oauthbearer.OAuthBearerToken;
import org.apache.kafka.common.security.oauthbearer.OAuthBearerTokenCallback;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class WorkloadClient {

    // ------------------------------------------------------------------
    // errors
    // ------------------------------------------------------------------

    /** Verification failure: JSON with "error", exit code 1. */
    static class Failed extends RuntimeException {
        final Map<String, Object> fields;

        Failed(String msg, Map<String, Object> fields) {
            super(msg);
            this.fields = fields == null ? new LinkedHashMap<>() : fields;
        }

        Failed(String msg) {
            this(msg, null);
        }
    }

    /** Bad command line: JSON with "error", exit code 2. */
    static class Usage extends RuntimeException {
        Usage(String msg) {
            super(msg);
        }
    }

    static void log(String msg) {
        System.err.println("[WorkloadClient] " + msg);
        System.err.flush();
    }

    // ------------------------------------------------------------------
    // argument parsing
    // ------------------------------------------------------------------

    static final Set<String> BOOL_FLAGS = new HashSet<>(Arrays.asList("tls", "no-hostname-verify"));
    static final Set<String> MULTI_FLAGS = new HashSet<>(Arrays.asList("extra", "producer-extra", "consumer-extra", "admin-extra", "op"));

    static class Args {
        final String cmd;
        final Map<String, String> single = new HashMap<>();
        final Map<String, List<String>> multi = new HashMap<>();

        Args(String[] argv) {
            if (argv.length == 0) throw new Usage("missing subcommand (roundtrip|admin|produce-latency|throughput|metadata)");
            cmd = argv[0];
            for (int i = 1; i < argv.length; i++) {
                String a = argv[i];
                if (!a.startsWith("--")) throw new Usage("unexpected argument: " + a);
                String name = a.substring(2);
                String value = null;
                int eq = name.indexOf('=');
                if (eq >= 0) {
                    value = name.substring(eq + 1);
                    name = name.substring(0, eq);
                }
                if (BOOL_FLAGS.contains(name)) {
                    single.put(name, value == null ? "true" : value);
                    continue;
                }
                if (value == null) {
                    if (i + 1 >= argv.length) throw new Usage("flag --" + name + " needs a value");
                    value = argv[++i];
                }
                if (MULTI_FLAGS.contains(name)) multi.computeIfAbsent(name, k -> new ArrayList<>()).add(value);
                else single.put(name, value);
            }
        }

        String get(String name) {
            return single.get(name);
        }

        String get(String name, String dflt) {
            return single.getOrDefault(name, dflt);
        }

        String req(String name) {
            String v = single.get(name);
            if (v == null) throw new Usage("--" + name + " is required for " + cmd);
            return v;
        }

        boolean flag(String name) {
            return "true".equalsIgnoreCase(single.getOrDefault(name, "false"));
        }

        int getInt(String name, int dflt) {
            try {
                return single.containsKey(name) ? Integer.parseInt(single.get(name)) : dflt;
            } catch (NumberFormatException e) {
                throw new Usage("--" + name + " expects an integer");
            }
        }

        long getLong(String name, long dflt) {
            try {
                return single.containsKey(name) ? Long.parseLong(single.get(name)) : dflt;
            } catch (NumberFormatException e) {
                throw new Usage("--" + name + " expects an integer");
            }
        }

        double getDouble(String name, double dflt) {
            try {
                return single.containsKey(name) ? Double.parseDouble(single.get(name)) : dflt;
            } catch (NumberFormatException e) {
                throw new Usage("--" + name + " expects a number");
            }
        }

        List<String> list(String name) {
            return multi.getOrDefault(name, Collections.emptyList());
        }
    }

    // ------------------------------------------------------------------
    // client configuration
    // ------------------------------------------------------------------

    static String jaasQuote(String s) {
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }

    static Properties baseConfig(Args a, String kind) {
        Properties p = new Properties();
        p.put("bootstrap.servers", a.req("bootstrap"));
        p.put("client.id", "kgw-workload-java-" + kind);
        boolean tls = a.flag("tls") || a.get("tls-ca") != null || a.get("client-cert") != null;
        String mech = a.get("sasl-mechanism");
        String oauthToken = a.get("oauth-token");
        if (oauthToken != null && mech == null) mech = "OAUTHBEARER";
        if (mech != null) p.put("security.protocol", tls ? "SASL_SSL" : "SASL_PLAINTEXT");
        else if (tls) p.put("security.protocol", "SSL");

        if (a.get("tls-ca") != null) {
            // Kafka >= 2.7 reads PEM trust stores directly (KIP-651).
            p.put("ssl.truststore.type", "PEM");
            p.put("ssl.truststore.location", a.get("tls-ca"));
        }
        String cert = a.get("client-cert"), key = a.get("client-key");
        if (cert != null || key != null) {
            if (cert == null || key == null) throw new Usage("--client-cert and --client-key go together");
            String keyPem, certPem;
            try {
                certPem = new String(Files.readAllBytes(Paths.get(cert)), StandardCharsets.US_ASCII);
                keyPem = new String(Files.readAllBytes(Paths.get(key)), StandardCharsets.US_ASCII);
            } catch (java.io.IOException e) {
                throw new Usage("cannot read client cert/key: " + e);
            }
            if (!keyPem.contains("-----BEGIN PRIVATE KEY-----") && !keyPem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----"))
                throw new Usage("--client-key must be PKCS#8 PEM (BEGIN PRIVATE KEY) for the Java client; convert with "
                        + "'openssl pkcs8 -topk8 -nocrypt -in key.pem -out key.pk8.pem'");
            // PEM key store given inline (cert chain + key come from two files).
            p.put("ssl.keystore.type", "PEM");
            p.put("ssl.keystore.certificate.chain", certPem.trim());
            p.put("ssl.keystore.key", keyPem.trim());
        }
        if (a.flag("no-hostname-verify")) p.put("ssl.endpoint.identification.algorithm", "");

        if (mech != null) {
            String m = mech.toUpperCase();
            p.put("sasl.mechanism", m);
            if (m.equals("OAUTHBEARER")) {
                if (oauthToken == null) throw new Usage("--sasl-mechanism OAUTHBEARER needs --oauth-token");
                String principal = a.get("username", "kgw-client");
                long lifetimeMs = (long) (a.getDouble("oauth-lifetime", 3600.0) * 1000);
                p.put("sasl.jaas.config", "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required"
                        + " kgwToken=" + jaasQuote(oauthToken)
                        + " kgwPrincipal=" + jaasQuote(principal)
                        + " kgwLifetimeMs=" + jaasQuote(Long.toString(lifetimeMs)) + ";");
                p.put("sasl.login.callback.handler.class", StaticTokenCallbackHandler.class.getName());
            } else if (m.equals("GSSAPI")) {
                String principal = a.req("principal");
                String keytab = a.get("keytab"), ccache = a.get("ccache");
                if ((keytab == null) == (ccache == null)) throw new Usage("--sasl-mechanism GSSAPI needs one of --keytab and --ccache");
                String login = keytab != null
                        ? " useKeyTab=true storeKey=true keyTab=" + jaasQuote(keytab)
                        : " useTicketCache=true ticketCache=" + jaasQuote(ccache);
                p.put("sasl.jaas.config", "com.sun.security.auth.module.Krb5LoginModule required" + login
                        + " principal=" + jaasQuote(principal) + ";");
                p.put("sasl.kerberos.service.name", a.get("service-name", "kafka"));
            } else {
                String user = a.get("username"), pass = a.get("password");
                if (user == null || pass == null) throw new Usage("--sasl-mechanism " + m + " needs --username and --password");
                String module = m.startsWith("SCRAM-") ? "org.apache.kafka.common.security.scram.ScramLoginModule"
                        : "org.apache.kafka.common.security.plain.PlainLoginModule";
                p.put("sasl.jaas.config", module + " required username=" + jaasQuote(user) + " password=" + jaasQuote(pass) + ";");
            }
        }
        return p;
    }

    static Properties applyExtra(Args a, Properties p, String kind) {
        List<String> extras = new ArrayList<>(a.list("extra"));
        extras.addAll(a.list(kind + "-extra"));
        for (String kv : extras) {
            int eq = kv.indexOf('=');
            if (eq <= 0) throw new Usage("--extra expects KEY=VALUE, got " + kv);
            p.put(kv.substring(0, eq), kv.substring(eq + 1));
        }
        return p;
    }

    static int opTimeoutMs(Args a) {
        return (int) (a.getDouble("op-timeout", 30.0) * 1000);
    }

    static Admin admin(Args a) {
        Properties p = baseConfig(a, "admin");
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, opTimeoutMs(a));
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, Math.max(opTimeoutMs(a), 1000));
        return Admin.create(applyExtra(a, p, "admin"));
    }

    static <K, V> KafkaProducer<K, V> producer(Args a, Properties overrides, Class<?> keySer, Class<?> valSer) {
        Properties p = baseConfig(a, "producer");
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, keySer.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, valSer.getName());
        p.putAll(overrides);
        return new KafkaProducer<>(applyExtra(a, p, "producer"));
    }

    static <K, V> KafkaConsumer<K, V> consumer(Args a, String group, Properties overrides, Class<?> keyDe, Class<?> valDe) {
        Properties p = baseConfig(a, "consumer");
        int session = a.getInt("session-timeout-ms", 6000);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        // tansu 0.6.0 answers a new group's first JoinGroup only after about
        // session.timeout.ms/2 (45 s default -> ~23 s); 6000 is the smallest
        // value real Kafka accepts (group.min.session.timeout.ms).
        p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, Integer.toString(session));
        p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, Integer.toString(Math.max(100, session / 3)));
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, keyDe.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, valDe.getName());
        p.putAll(overrides);
        Properties c = applyExtra(a, p, "consumer");
        // The KIP-848 consumer protocol takes its session and heartbeat timing from the broker
        // (group.consumer.*), and the client refuses both settings with it.
        if ("consumer".equalsIgnoreCase(String.valueOf(c.getProperty(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic")))) {
            c.remove(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG);
            c.remove(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG);
        }
        return new KafkaConsumer<>(c);
    }

    static Properties props(Object... kv) {
        Properties p = new Properties();
        for (int i = 0; i < kv.length; i += 2) p.put(kv[i], String.valueOf(kv[i + 1]));
        return p;
    }

    // ------------------------------------------------------------------
    // OAUTHBEARER with a static token
    // ------------------------------------------------------------------

    /** Static OAuth bearer token (the broker/gateway does the validation). */
    public static final class StaticToken implements OAuthBearerToken {
        private final String value, principal;
        private final long startMs, lifetimeMs;

        StaticToken(String value, String principal, long startMs, long lifetimeMs) {
            this.value = value;
            this.principal = principal;
            this.startMs = startMs;
            this.lifetimeMs = lifetimeMs;
        }

        @Override public String value() { return value; }
        @Override public Set<String> scope() { return Collections.emptySet(); }
        @Override public long lifetimeMs() { return lifetimeMs; }
        @Override public String principalName() { return principal; }
        @Override public Long startTimeMs() { return startMs; }
    }

    /**
     * sasl.login.callback.handler.class for OAUTHBEARER: hands the token given
     * as JAAS option kgwToken to the OAuthBearerLoginModule.
     */
    public static final class StaticTokenCallbackHandler implements AuthenticateCallbackHandler {
        private String token, principal;
        private long lifetimeMs = 3600_000L;

        public StaticTokenCallbackHandler() {}

        @Override
        public void configure(Map<String, ?> configs, String saslMechanism, List<AppConfigurationEntry> jaasConfigEntries) {
            for (AppConfigurationEntry e : jaasConfigEntries) {
                Map<String, ?> o = e.getOptions();
                if (o.get("kgwToken") != null) token = (String) o.get("kgwToken");
                if (o.get("kgwPrincipal") != null) principal = (String) o.get("kgwPrincipal");
                if (o.get("kgwLifetimeMs") != null) lifetimeMs = Long.parseLong((String) o.get("kgwLifetimeMs"));
            }
            if (token == null) throw new IllegalArgumentException("JAAS option kgwToken missing");
            if (principal == null) principal = "kgw-client";
        }

        @Override
        public void handle(Callback[] callbacks) throws UnsupportedCallbackException {
            for (Callback cb : callbacks) {
                if (cb instanceof OAuthBearerTokenCallback) {
                    long now = System.currentTimeMillis();
                    ((OAuthBearerTokenCallback) cb).token(new StaticToken(token, principal, now, now + lifetimeMs));
                } else if (cb instanceof SaslExtensionsCallback) {
                    ((SaslExtensionsCallback) cb).extensions(SaslExtensions.empty());
                } else {
                    throw new UnsupportedCallbackException(cb);
                }
            }
        }

        @Override
        public void close() {}
    }

    // ------------------------------------------------------------------
    // helpers
    // ------------------------------------------------------------------

    static Throwable root(Throwable t) {
        while ((t instanceof ExecutionException || t instanceof java.util.concurrent.CompletionException) && t.getCause() != null)
            t = t.getCause();
        return t;
    }

    /** Creates the topic; returns false if it already existed. */
    static boolean ensureTopic(Admin admin, String topic, int partitions, short replication, Map<String, String> configs, int timeoutMs)
            throws Exception {
        NewTopic nt = new NewTopic(topic, partitions, replication);
        if (configs != null && !configs.isEmpty()) nt.configs(configs);
        boolean created;
        try {
            admin.createTopics(Collections.singleton(nt)).all().get(timeoutMs, TimeUnit.MILLISECONDS);
            created = true;
        } catch (ExecutionException e) {
            if (!(root(e) instanceof TopicExistsException)) throw e;
            log("topic " + topic + " already exists");
            created = false;
        }
        waitTopic(admin, topic, true, timeoutMs);
        return created;
    }

    static Set<String> listTopics(Admin admin, int timeoutMs) throws Exception {
        return admin.listTopics().names().get(timeoutMs, TimeUnit.MILLISECONDS);
    }

    static void waitTopic(Admin admin, String topic, boolean present, int timeoutMs) throws Exception {
        long deadline = System.nanoTime() + timeoutMs * 1_000_000L;
        long delay = 50;
        while (true) {
            boolean has = listTopics(admin, timeoutMs).contains(topic);
            if (has == present) return;
            if (System.nanoTime() > deadline)
                throw new Failed("topic " + topic + " still " + (present ? "absent" : "present") + " after " + timeoutMs + "ms");
            Thread.sleep(delay);
            delay = Math.min(delay * 2, 1000);
        }
    }

    static String expectedValue(int i, String run, int size) {
        StringBuilder sb = new StringBuilder("v-").append(i).append('-').append(run).append('-');
        while (sb.length() < size) sb.append('x');
        return sb.toString();
    }

    static double round(double v, int digits) {
        double f = Math.pow(10, digits);
        return Math.round(v * f) / f;
    }

    static double percentile(double[] sorted, double p) {
        if (sorted.length == 0) return Double.NaN;
        double k = (sorted.length - 1) * p / 100.0;
        int lo = (int) k;
        int hi = Math.min(lo + 1, sorted.length - 1);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (k - lo);
    }

    // ------------------------------------------------------------------
    // subcommands
    // ------------------------------------------------------------------

    /**
     * Transactions end to end: a transactional producer commits and aborts transactions (every
     * --abort-every'th aborts), committing a consumer group's offset inside each committed one
     * (AddOffsetsToTxn + TxnOffsetCommit); then a read_committed consumer must see every committed
     * record exactly once and no aborted one, and a read_uncommitted consumer sees both.
     */
    static boolean txn(Args a, Map<String, Object> out) throws Exception {
        String topic = a.req("topic");
        String txnId = a.req("transactional-id");
        int transactions = a.getInt("transactions", 10);
        int perTxn = a.getInt("per-txn", 20);
        int abortEvery = a.getInt("abort-every", 3);
        String run = UUID.randomUUID().toString().replace("-", "").substring(0, 12);
        String offsetsGroup = a.get("offsets-group", "kgw-txn-offsets-" + run);
        long timeoutMs = (long) (a.getDouble("timeout", 60.0) * 1000);
        out.put("topic", topic);
        out.put("transactional_id", txnId);
        try (Admin admin = admin(a)) {
            ensureTopic(admin, topic, 1, (short) a.getInt("replication", 1), null, opTimeoutMs(a));
        }
        Set<String> committed = new HashSet<>(), aborted = new HashSet<>();
        long committedTxns = 0, abortedTxns = 0;
        try (KafkaProducer<String, String> producer = producer(a,
                props(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId, "acks", "all"),
                StringSerializer.class, StringSerializer.class)) {
            producer.initTransactions();
            for (int t = 0; t < transactions; t++) {
                boolean abort = abortEvery > 0 && t % abortEvery == abortEvery - 1;
                producer.beginTransaction();
                List<String> values = new ArrayList<>();
                for (int i = 0; i < perTxn; i++) {
                    String v = "v-" + t + "." + i + "-" + run;
                    producer.send(new ProducerRecord<>(topic, 0, "k-" + t + "." + i, v));
                    values.add(v);
                }
                if (abort) {
                    producer.flush();
                    producer.abortTransaction();
                    aborted.addAll(values);
                    abortedTxns++;
                } else {
                    Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                    offsets.put(new TopicPartition(topic, 0), new OffsetAndMetadata(t + 1, "txn-" + t));
                    producer.sendOffsetsToTransaction(offsets,
                            new org.apache.kafka.clients.consumer.ConsumerGroupMetadata(offsetsGroup));
                    producer.commitTransaction();
                    committed.addAll(values);
                    committedTxns++;
                }
            }
        }
        out.put("committed_transactions", committedTxns);
        out.put("aborted_transactions", abortedTxns);
        log("txn: " + committedTxns + " committed, " + abortedTxns + " aborted");
        Map<String, Integer> readCommitted = readAll(a, topic, run, "read_committed", committed.size(), timeoutMs);
        Map<String, Integer> readUncommitted = readAll(a, topic, run, "read_uncommitted",
                committed.size() + aborted.size(), timeoutMs);
        long missing = committed.stream().filter(v -> !readCommitted.containsKey(v)).count();
        long dup = readCommitted.values().stream().filter(c -> c > 1).count();
        long abortedSeen = aborted.stream().filter(readCommitted::containsKey).count();
        long uncommittedSeen = readUncommitted.keySet().stream().filter(aborted::contains).count();
        out.put("committed_records", committed.size());
        out.put("read_committed_missing", missing);
        out.put("read_committed_duplicates", dup);
        out.put("read_committed_saw_aborted", abortedSeen);
        out.put("read_uncommitted_saw_aborted", uncommittedSeen);
        long groupOffset = -1;
        try (Admin admin = admin(a)) {
            Map<TopicPartition, OffsetAndMetadata> o = admin.listConsumerGroupOffsets(offsetsGroup)
                    .partitionsToOffsetAndMetadata().get(opTimeoutMs(a), TimeUnit.MILLISECONDS);
            OffsetAndMetadata om = o.get(new TopicPartition(topic, 0));
            if (om != null) groupOffset = om.offset();
        }
        out.put("group_offset", groupOffset);
        // The last committed transaction committed offset t + 1.
        long expectedOffset = -1;
        for (int t = transactions - 1; t >= 0; t--) {
            if (!(abortEvery > 0 && t % abortEvery == abortEvery - 1)) {
                expectedOffset = t + 1;
                break;
            }
        }
        out.put("expected_group_offset", expectedOffset);
        return missing == 0 && dup == 0 && abortedSeen == 0 && (aborted.isEmpty() || uncommittedSeen == aborted.size())
                && groupOffset == expectedOffset;
    }

    /** Every value of this run in partition 0 of `topic`, read from the start at `isolation`. */
    static Map<String, Integer> readAll(Args a, String topic, String run, String isolation, int expect, long timeoutMs) {
        Map<String, Integer> seen = new HashMap<>();
        Properties p = new Properties();
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        try (KafkaConsumer<String, String> c = consumer(a, "kgw-txn-read-" + isolation + "-" + run, p,
                StringDeserializer.class, StringDeserializer.class)) {
            c.subscribe(Collections.singletonList(topic));
            long deadline = System.nanoTime() + timeoutMs * 1_000_000L;
            long quietSince = -1;
            while (System.nanoTime() < deadline) {
                ConsumerRecords<String, String> recs = c.poll(Duration.ofMillis(300));
                for (ConsumerRecord<String, String> r : recs) {
                    if (r.value() != null && r.value().endsWith("-" + run)) seen.merge(r.value(), 1, Integer::sum);
                }
                if (seen.size() >= expect) {
                    // keep reading a moment: anything more would be a duplicate or an aborted record
                    if (quietSince < 0) quietSince = System.nanoTime();
                    if (System.nanoTime() - quietSince > 1_000_000_000L) break;
                }
            }
        }
        log("read " + seen.size() + " values at " + isolation);
        return seen;
    }

    static boolean roundtrip(Args a, Map<String, Object> out) throws Exception {
        String topic = a.req("topic");
        int count = a.getInt("count", 10000);
        String run = UUID.randomUUID().toString().replace("-", "").substring(0, 12);
        String group = a.get("group", "kgw-rt-" + run);
        int valueSize = a.getInt("value-size", 100);
        long timeoutMs = (long) (a.getDouble("timeout", 120.0) * 1000);
        long settleMs = (long) (a.getDouble("settle", 0.5) * 1000);
        int opTimeout = opTimeoutMs(a);
        out.put("topic", topic);
        out.put("group", group);

        boolean created;
        try (Admin admin = admin(a)) {
            created = ensureTopic(admin, topic, a.getInt("partitions", 3), (short) a.getInt("replication", 1), null, opTimeout);
        }
        log("roundtrip: topic=" + topic + " created=" + created + " count=" + count + " group=" + group + " run=" + run);

        AtomicLong delivered = new AtomicLong();
        AtomicLong failedSends = new AtomicLong();
        AtomicReference<String> firstErr = new AtomicReference<>();
        long t0 = System.nanoTime();
        try (KafkaProducer<String, String> producer = producer(a, props("acks", "all", "linger.ms", 5),
                StringSerializer.class, StringSerializer.class)) {
            for (int i = 0; i < count; i++) {
                ProducerRecord<String, String> rec = new ProducerRecord<>(topic, "k-" + i, expectedValue(i, run, valueSize));
                rec.headers().add("idx", Integer.toString(i).getBytes(StandardCharsets.UTF_8));
                producer.send(rec, (md, ex) -> {
                    if (ex == null) delivered.incrementAndGet();
                    else {
                        failedSends.incrementAndGet();
                        firstErr.compareAndSet(null, ex.toString());
                    }
                });
            }
            producer.flush();
        }
        double produceS = (System.nanoTime() - t0) / 1e9;
        log(String.format("produced %d (errors %d) in %.2fs", delivered.get(), failedSends.get(), produceS));
        out.put("produced", delivered.get());
        if (failedSends.get() > 0 || delivered.get() != count) {
            out.put("produce_errors", failedSends.get());
            throw new Failed("produce failed: " + firstErr.get(), out);
        }

        int[] seen = new int[count];
        long consumed = 0, mismatches = 0, stale = 0;
        List<Map<String, Object>> mismatchExamples = new ArrayList<>();
        Set<Integer> partitionsSeen = new java.util.TreeSet<>();
        int distinct = 0;
        long t1 = System.nanoTime();
        long deadline = t1 + timeoutMs * 1_000_000L;
        long completeAt = -1, firstAt = -1;
        boolean commitOk = false;
        Map<String, Object> committedOffsets = new TreeMap<>();
        try (KafkaConsumer<String, String> consumer = consumer(a, group, new Properties(),
                StringDeserializer.class, StringDeserializer.class)) {
            consumer.subscribe(Collections.singletonList(topic));
            while (true) {
                long now = System.nanoTime();
                if (completeAt >= 0 && now - completeAt >= settleMs * 1_000_000L) break;
                if (now > deadline) {
                    log("consume timeout after " + timeoutMs + "ms");
                    break;
                }
                ConsumerRecords<String, String> recs = consumer.poll(Duration.ofMillis(500));
                for (ConsumerRecord<String, String> r : recs) {
                    if (firstAt < 0) firstAt = System.nanoTime();
                    partitionsSeen.add(r.partition());
                    String k = r.key() == null ? "" : r.key();
                    String v = r.value() == null ? "" : r.value();
                    int i = -1;
                    if (k.startsWith("k-")) {
                        try {
                            i = Integer.parseInt(k.substring(2));
                        } catch (NumberFormatException ignored) {
                        }
                    }
                    String[] vp = v.split("-", 4);
                    if (vp.length >= 3 && vp[0].equals("v") && !vp[2].equals(run) && vp[1].equals(Integer.toString(i))) {
                        stale++; // left by an earlier run on a reused topic
                        continue;
                    }
                    consumed++;
                    Header h = r.headers().lastHeader("idx");
                    String hv = h == null || h.value() == null ? null : new String(h.value(), StandardCharsets.UTF_8);
                    boolean ok = i >= 0 && i < count && v.equals(expectedValue(i, run, valueSize)) && Integer.toString(i).equals(hv);
                    if (!ok) {
                        mismatches++;
                        if (mismatchExamples.size() < 5) {
                            Map<String, Object> ex = new LinkedHashMap<>();
                            ex.put("key", k);
                            ex.put("value", v.length() > 60 ? v.substring(0, 60) : v);
                            ex.put("idx_header", hv);
                            mismatchExamples.add(ex);
                        }
                        continue;
                    }
                    if (seen[i]++ == 0) distinct++;
                }
                if (completeAt < 0 && distinct >= count) completeAt = System.nanoTime();
            }
            try {
                consumer.commitSync(Duration.ofMillis(opTimeout));
                commitOk = true;
                Map<TopicPartition, OffsetAndMetadata> c = consumer.committed(consumer.assignment(), Duration.ofMillis(opTimeout));
                for (Map.Entry<TopicPartition, OffsetAndMetadata> e : c.entrySet())
                    committedOffsets.put(Integer.toString(e.getKey().partition()), e.getValue() == null ? null : e.getValue().offset());
            } catch (Exception e) {
                log("commit failed: " + e);
            }
        }
        double consumeS = ((completeAt >= 0 ? completeAt : System.nanoTime()) - t1) / 1e9;
        List<String> missing = new ArrayList<>();
        long missingCount = 0, duplicates = 0;
        for (int i = 0; i < count; i++) {
            if (seen[i] == 0) {
                missingCount++;
                if (missing.size() < 10) missing.add("k-" + i);
            } else if (seen[i] > 1) duplicates += seen[i] - 1;
        }
        out.put("consumed", consumed);
        out.put("distinct", distinct);
        out.put("mismatches", mismatches);
        out.put("missing", missing);
        out.put("missing_count", missingCount);
        out.put("duplicates", duplicates);
        out.put("stale_ignored", stale);
        out.put("partitions", new ArrayList<>(partitionsSeen));
        out.put("committed", commitOk);
        out.put("committed_offsets", committedOffsets);
        out.put("produce_seconds", round(produceS, 3));
        out.put("consume_seconds", round(consumeS, 3));
        out.put("first_record_seconds", firstAt < 0 ? null : round((firstAt - t1) / 1e9, 3));
        if (!mismatchExamples.isEmpty()) out.put("mismatch_examples", mismatchExamples);
        return delivered.get() == count && distinct == count && missingCount == 0 && mismatches == 0 && duplicates == 0 && commitOk;
    }

    static boolean admin(Args a, Map<String, Object> out) throws Exception {
        String topic = a.req("topic");
        String cfgKey = "retention.ms", cfgVal = Long.toString(a.getLong("retention-ms", 3600000L));
        int opTimeout = opTimeoutMs(a);
        out.put("topic", topic);
        for (String k : new String[] {"created", "listed", "described", "deleted", "absent_after_delete"}) out.put(k, false);
        long t0 = System.nanoTime();
        try (Admin admin = admin(a)) {
            boolean created = ensureTopic(admin, topic, a.getInt("partitions", 3), (short) a.getInt("replication", 1),
                    Collections.singletonMap(cfgKey, cfgVal), opTimeout);
            out.put("created", true);
            out.put("already_existed", !created);
            if (!listTopics(admin, opTimeout).contains(topic)) throw new Failed("created topic missing from list", out);
            out.put("listed", true);

            ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            Map<ConfigResource, Config> cfgs = admin.describeConfigs(Collections.singleton(res)).all().get(opTimeout, TimeUnit.MILLISECONDS);
            Config cfg = cfgs.get(res);
            Collection<ConfigEntry> entries = cfg == null ? Collections.emptyList() : cfg.entries();
            out.put("config_count", entries.size());
            ConfigEntry e = cfg == null ? null : cfg.get(cfgKey);
            Map<String, Object> shown = new LinkedHashMap<>();
            shown.put(cfgKey, e == null ? null : e.value());
            out.put("config", shown);
            boolean described = e != null && cfgVal.equals(e.value());
            out.put("described", described);
            if (!described) log("DescribeConfigs returned " + entries.size() + " entries, " + cfgKey + "=" + (e == null ? null : e.value()));

            admin.deleteTopics(Collections.singleton(topic)).all().get(opTimeout, TimeUnit.MILLISECONDS);
            out.put("deleted", true);
            waitTopic(admin, topic, false, opTimeout);
            out.put("absent_after_delete", true);
        }
        out.put("seconds", round((System.nanoTime() - t0) / 1e9, 3));
        for (String k : new String[] {"created", "listed", "described", "deleted", "absent_after_delete"})
            if (!Boolean.TRUE.equals(out.get(k))) return false;
        return true;
    }

    /**
     * Each --op in turn, reporting its error code and message (0 and "" on success):
     *   create TOPIC PARTITIONS RF [k=v ...]       CreateTopics
     *   validate TOPIC PARTITIONS RF [k=v ...]     CreateTopics with validateOnly
     *   partitions TOPIC COUNT                     CreatePartitions
     *   incremental topic|broker NAME k=v|k+=v|-k ...  IncrementalAlterConfigs
     * (The legacy AlterConfigs is gone from the 4.x Admin client.)
     */
    static boolean safeguards(Args a, Map<String, Object> out) throws Exception {
        int t = opTimeoutMs(a);
        List<Object> results = new ArrayList<>();
        try (Admin admin = admin(a)) {
            for (String line : a.list("op")) {
                String[] w = line.trim().split("\\s+");
                org.apache.kafka.common.KafkaFuture<?> f;
                switch (w[0]) {
                    case "create":
                    case "validate": {
                        Map<String, String> configs = new HashMap<>();
                        for (int i = 4; i < w.length; i++) {
                            String[] kv = w[i].split("=", 2);
                            configs.put(kv[0], kv[1]);
                        }
                        NewTopic nt = new NewTopic(w[1], Integer.parseInt(w[2]), Short.parseShort(w[3])).configs(configs);
                        f = admin.createTopics(Collections.singleton(nt),
                                new org.apache.kafka.clients.admin.CreateTopicsOptions().validateOnly(w[0].equals("validate")))
                            .values().get(w[1]);
                        break;
                    }
                    case "partitions":
                        f = admin.createPartitions(Collections.singletonMap(w[1],
                                org.apache.kafka.clients.admin.NewPartitions.increaseTo(Integer.parseInt(w[2]))))
                            .values().get(w[1]);
                        break;
                    case "incremental": {
                        ConfigResource res = new ConfigResource(
                                w[1].equals("topic") ? ConfigResource.Type.TOPIC : ConfigResource.Type.BROKER, w[2]);
                        List<org.apache.kafka.clients.admin.AlterConfigOp> ops = new ArrayList<>();
                        for (int i = 3; i < w.length; i++) {
                            org.apache.kafka.clients.admin.AlterConfigOp.OpType type;
                            String name, value = null;
                            if (w[i].startsWith("-")) {
                                type = org.apache.kafka.clients.admin.AlterConfigOp.OpType.DELETE;
                                name = w[i].substring(1);
                            } else if (w[i].contains("+=")) {
                                type = org.apache.kafka.clients.admin.AlterConfigOp.OpType.APPEND;
                                name = w[i].substring(0, w[i].indexOf("+="));
                                value = w[i].substring(w[i].indexOf("+=") + 2);
                            } else {
                                type = org.apache.kafka.clients.admin.AlterConfigOp.OpType.SET;
                                name = w[i].substring(0, w[i].indexOf('='));
                                value = w[i].substring(w[i].indexOf('=') + 1);
                            }
                            ops.add(new org.apache.kafka.clients.admin.AlterConfigOp(new ConfigEntry(name, value), type));
                        }
                        f = admin.incrementalAlterConfigs(Collections.singletonMap(res, ops)).values().get(res);
                        break;
                    }
                    default:
                        throw new Usage("unknown --op " + w[0]);
                }
                Map<String, Object> r = new LinkedHashMap<>();
                r.put("op", line);
                try {
                    f.get(t, TimeUnit.MILLISECONDS);
                    r.put("code", 0);
                    r.put("message", "");
                } catch (ExecutionException e) {
                    Throwable cause = e.getCause();
                    r.put("code", (int) org.apache.kafka.common.protocol.Errors.forException(cause).code());
                    r.put("message", cause.getMessage());
                }
                log(line + " -> " + r.get("code") + " " + r.get("message"));
                results.add(r);
            }
        }
        out.put("results", results);
        return true;
    }

    static boolean produceLatency(Args a, Map<String, Object> out) throws Exception {
        String topic = a.req("topic");
        int count = a.getInt("count", 1000), warmup = a.getInt("warmup", 20), size = a.getInt("record-size", 100);
        String acks = a.get("acks", "1");
        int opTimeout = opTimeoutMs(a);
        try (Admin admin = admin(a)) {
            ensureTopic(admin, topic, a.getInt("partitions", 3), (short) a.getInt("replication", 1), null, opTimeout);
        }
        byte[] payload = new byte[size];
        Arrays.fill(payload, (byte) 'l');
        double[] lat = new double[count];
        try (KafkaProducer<byte[], byte[]> producer = producer(a, props("acks", acks, "linger.ms", 0),
                ByteArraySerializer.class, ByteArraySerializer.class)) {
            for (int i = 0; i < warmup + count; i++) {
                long t = System.nanoTime();
                // send().get() == produce + flush of a single record
                producer.send(new ProducerRecord<>(topic, ("lat-" + i).getBytes(StandardCharsets.UTF_8), payload))
                        .get(opTimeout, TimeUnit.MILLISECONDS);
                double us = (System.nanoTime() - t) / 1000.0;
                if (i >= warmup) lat[i - warmup] = us;
            }
        }
        double[] s = lat.clone();
        Arrays.sort(s);
        double sum = 0;
        for (double v : s) sum += v;
        out.put("topic", topic);
        out.put("count", count);
        out.put("acks", acks);
        out.put("p50_us", round(percentile(s, 50), 1));
        out.put("p90_us", round(percentile(s, 90), 1));
        out.put("p99_us", round(percentile(s, 99), 1));
        out.put("mean_us", round(sum / s.length, 1));
        out.put("min_us", round(s[0], 1));
        out.put("max_us", round(s[s.length - 1], 1));
        return true;
    }

    /** Produces for --seconds as fast as the client may (acks=1); reports the bytes/s acknowledged within them. */
    static boolean produceRate(Args a, Map<String, Object> out) throws Exception {
        String topic = a.req("topic");
        double seconds = a.getDouble("seconds", 15.0);
        int size = a.getInt("record-size", 10000);
        try (Admin admin = admin(a)) {
            ensureTopic(admin, topic, a.getInt("partitions", 3), (short) a.getInt("replication", 1), null, opTimeoutMs(a));
        }
        byte[] payload = new byte[size];
        Arrays.fill(payload, (byte) 'r');
        AtomicLong acked = new AtomicLong();
        long t0 = System.nanoTime();
        long deadline = t0 + (long) (seconds * 1e9);
        KafkaProducer<byte[], byte[]> producer = producer(a, props("acks", "1", "linger.ms", 5,
                "batch.size", a.getInt("batch-size", 65536), "buffer.memory", 8388608L, "compression.type", "none"),
                ByteArraySerializer.class, ByteArraySerializer.class);
        try {
            while (System.nanoTime() < deadline) {
                producer.send(new ProducerRecord<>(topic, payload), (md, ex) -> {
                    if (ex == null && System.nanoTime() <= deadline) acked.addAndGet(payload.length);
                });
            }
        } finally {
            producer.close(java.time.Duration.ofSeconds(1));
        }
        out.put("topic", topic);
        out.put("seconds", seconds);
        out.put("acked_bytes", acked.get());
        out.put("bytes_per_s", Math.round(acked.get() / seconds * 10) / 10.0);
        return acked.get() > 0;
    }

    /** Consumes a topic from the start for --seconds (the clock starts at the first record); reports the value bytes/s. */
    static boolean consumeRate(Args a, Map<String, Object> out) throws Exception {
        String topic = a.req("topic");
        double seconds = a.getDouble("seconds", 10.0);
        int fetchMax = a.getInt("fetch-max-bytes", 262144);
        String group = "kgw-rate-" + UUID.randomUUID().toString().replace("-", "").substring(0, 12);
        long got = 0;
        try (KafkaConsumer<byte[], byte[]> consumer = consumer(a, group, props("fetch.max.bytes", fetchMax,
                "max.partition.fetch.bytes", fetchMax), ByteArrayDeserializer.class, ByteArrayDeserializer.class)) {
            consumer.subscribe(List.of(topic));
            long end = System.nanoTime() + (long) (a.getDouble("timeout", 60.0) * 1e9);
            boolean started = false;
            while (System.nanoTime() < end) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(java.time.Duration.ofMillis(200))) {
                    long now = System.nanoTime();
                    if (!started) {
                        // Joining the group is not fetching.
                        started = true;
                        end = now + (long) (seconds * 1e9);
                    }
                    if (now <= end && r.value() != null) got += r.value().length;
                }
            }
        }
        out.put("topic", topic);
        out.put("seconds", seconds);
        out.put("bytes", got);
        out.put("bytes_per_s", Math.round(got / seconds * 10) / 10.0);
        return got > 0;
    }

    static boolean throughput(Args a, Map<String, Object> out) throws Exception {
        String topic = a.req("topic");
        long total = a.getLong("bytes", -1);
        if (total <= 0) throw new Usage("--bytes is required for throughput");
        int size = a.getInt("record-size", 1024);
        String acks = a.get("acks", "1");
        long timeoutMs = (long) (a.getDouble("timeout", 300.0) * 1000);
        String run = UUID.randomUUID().toString().replace("-", "").substring(0, 12);
        String group = a.get("group", "kgw-tp-" + run);
        int opTimeout = opTimeoutMs(a);
        try (Admin admin = admin(a)) {
            ensureTopic(admin, topic, a.getInt("partitions", 3), (short) a.getInt("replication", 1), null, opTimeout);
        }
        long n = Math.max(1, total / size);
        byte[] prefix = ("tp-" + run + "-").getBytes(StandardCharsets.UTF_8);
        byte[] payload = new byte[Math.max(size, prefix.length)];
        Arrays.fill(payload, (byte) 't');
        System.arraycopy(prefix, 0, payload, 0, prefix.length);
        long totalBytes = n * payload.length;
        AtomicLong errors = new AtomicLong();
        AtomicReference<String> firstErr = new AtomicReference<>();
        log(String.format("throughput: producing %d records x %d bytes = %.1f MB", n, payload.length, totalBytes / 1e6));
        long t0 = System.nanoTime();
        try (KafkaProducer<byte[], byte[]> producer = producer(a, props("acks", acks,
                "linger.ms", a.getInt("linger-ms", 10), "batch.size", 1048576, "buffer.memory", 268435456L,
                "compression.type", a.get("compression", "none")), ByteArraySerializer.class, ByteArraySerializer.class)) {
            for (long i = 0; i < n; i++) {
                producer.send(new ProducerRecord<>(topic, payload), (md, ex) -> {
                    if (ex != null) {
                        errors.incrementAndGet();
                        firstErr.compareAndSet(null, ex.toString());
                    }
                });
            }
            producer.flush();
        }
        double produceS = (System.nanoTime() - t0) / 1e9;
        if (errors.get() > 0) throw new Failed("produce failed: " + errors.get() + " errors, first: " + firstErr.get());

        long got = 0, gotBytes = 0;
        long t1 = System.nanoTime(), first = -1, end;
        long deadline = t1 + timeoutMs * 1_000_000L;
        try (KafkaConsumer<byte[], byte[]> consumer = consumer(a, group, props("enable.auto.commit", "true",
                "fetch.max.bytes", 52428800, "max.partition.fetch.bytes", 10485760, "max.poll.records", 10000),
                ByteArrayDeserializer.class, ByteArrayDeserializer.class)) {
            consumer.subscribe(Collections.singletonList(topic));
            outer:
            while (got < n && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(500))) {
                    byte[] v = r.value();
                    if (v != null && v.length >= prefix.length
                            && Arrays.equals(v, 0, prefix.length, prefix, 0, prefix.length)) {
                        if (first < 0) first = System.nanoTime();
                        got++;
                        gotBytes += v.length;
                        if (got >= n) break outer;
                    }
                }
            }
            end = System.nanoTime();
        }
        double consumeS = (end - (first < 0 ? t1 : first)) / 1e9;
        out.put("topic", topic);
        out.put("records", n);
        out.put("record_size", payload.length);
        out.put("bytes", totalBytes);
        out.put("acks", acks);
        out.put("produce_seconds", round(produceS, 3));
        out.put("produce_mb_s", produceS > 0 ? round(totalBytes / 1e6 / produceS, 2) : null);
        out.put("consumed", got);
        out.put("consume_seconds", round(consumeS, 3));
        out.put("consume_mb_s", consumeS > 0 ? round(gotBytes / 1e6 / consumeS, 2) : null);
        out.put("consume_join_seconds", round(((first < 0 ? end : first) - t1) / 1e9, 3));
        return got == n;
    }

    static boolean metadata(Args a, Map<String, Object> out) throws Exception {
        int opTimeout = opTimeoutMs(a);
        try (Admin admin = admin(a)) {
            DescribeClusterResult dc = admin.describeCluster();
            out.put("cluster_id", dc.clusterId().get(opTimeout, TimeUnit.MILLISECONDS));
            Node ctrl = dc.controller().get(opTimeout, TimeUnit.MILLISECONDS);
            out.put("controller_id", ctrl == null ? null : ctrl.id());
            List<Map<String, Object>> brokers = new ArrayList<>();
            for (Node n : dc.nodes().get(opTimeout, TimeUnit.MILLISECONDS)) {
                Map<String, Object> b = new LinkedHashMap<>();
                b.put("node_id", n.id());
                b.put("host", n.host());
                b.put("port", n.port());
                brokers.add(b);
            }
            out.put("brokers", brokers);
            out.put("topics", new ArrayList<>(new java.util.TreeSet<>(listTopics(admin, opTimeout))));
        }
        return true;
    }

    // ------------------------------------------------------------------
    // JSON (minimal writer for maps/lists/strings/numbers/booleans/null)
    // ------------------------------------------------------------------

    static void json(StringBuilder sb, Object o) {
        if (o == null) sb.append("null");
        else if (o instanceof String) {
            sb.append('"');
            for (char c : ((String) o).toCharArray()) {
                switch (c) {
                    case '"': sb.append("\\\""); break;
                    case '\\': sb.append("\\\\"); break;
                    case '\n': sb.append("\\n"); break;
                    case '\r': sb.append("\\r"); break;
                    case '\t': sb.append("\\t"); break;
                    default:
                        if (c < 0x20) sb.append(String.format("\\u%04x", (int) c));
                        else sb.append(c);
                }
            }
            sb.append('"');
        } else if (o instanceof Double || o instanceof Float) {
            double d = ((Number) o).doubleValue();
            if (Double.isNaN(d) || Double.isInfinite(d)) sb.append("null");
            else sb.append(o);
        } else if (o instanceof Number || o instanceof Boolean) sb.append(o);
        else if (o instanceof Map) {
            sb.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : ((Map<?, ?>) o).entrySet()) {
                if (!first) sb.append(", ");
                first = false;
                json(sb, String.valueOf(e.getKey()));
                sb.append(": ");
                json(sb, e.getValue());
            }
            sb.append('}');
        } else if (o instanceof Collection) {
            sb.append('[');
            boolean first = true;
            for (Object x : (Collection<?>) o) {
                if (!first) sb.append(", ");
                first = false;
                json(sb, x);
            }
            sb.append(']');
        } else json(sb, o.toString());
    }

    // ------------------------------------------------------------------
    // main
    // ------------------------------------------------------------------

    /** The kafka-clients version on the classpath (AppInfoParser moved between 3.x and 4.x). */
    static String clientVersion() {
        try (java.io.InputStream in = KafkaProducer.class.getResourceAsStream("/kafka/kafka-version.properties")) {
            Properties p = new Properties();
            if (in != null) p.load(in);
            return p.getProperty("version", "?");
        } catch (java.io.IOException e) {
            return "?";
        }
    }

    public static void main(String[] argv) {
        long t0 = System.nanoTime();
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("client", "java");
        String cmd = argv.length > 0 ? argv[0] : null;
        int code;
        boolean ok;
        try {
            Args a = new Args(argv);
            // Before anything touches Kerberos: the JVM reads its krb5.conf once.
            if (a.get("krb5-conf") != null) System.setProperty("java.security.krb5.conf", a.get("krb5-conf"));
            log("kafka-clients " + clientVersion() + ", cmd=" + a.cmd + " bootstrap=" + a.get("bootstrap"));
            switch (a.cmd) {
                case "roundtrip": ok = roundtrip(a, out); break;
                case "admin": ok = admin(a, out); break;
                case "safeguards": ok = safeguards(a, out); break;
                case "produce-latency": ok = produceLatency(a, out); break;
                case "throughput": ok = throughput(a, out); break;
                case "produce-rate": ok = produceRate(a, out); break;
                case "consume-rate": ok = consumeRate(a, out); break;
                case "metadata": ok = metadata(a, out); break;
                case "txn": ok = txn(a, out); break;
                default: throw new Usage("unknown subcommand " + a.cmd);
            }
            code = ok ? 0 : 1;
        } catch (Usage e) {
            ok = false;
            code = 2;
            out.put("error", "usage: " + e.getMessage());
        } catch (Failed e) {
            ok = false;
            code = 1;
            out.putAll(e.fields);
            out.put("error", e.getMessage());
        } catch (Throwable e) {
            Throwable r = root(e);
            ok = false;
            // Kafka errors (timeouts, auth, broker errors) are failures, not crashes.
            code = (r instanceof org.apache.kafka.common.KafkaException || r instanceof java.util.concurrent.TimeoutException) ? 1 : 3;
            String msg = r.getMessage();
            if (msg == null && r instanceof java.util.concurrent.TimeoutException)
                msg = "operation did not complete within --op-timeout (broker unreachable, TLS/SASL failure, or not responding)";
            out.put("error", r.getClass().getSimpleName() + ": " + msg);
            r.printStackTrace(System.err);
        }
        out.put("client", "java");
        out.put("command", cmd);
        out.put("ok", ok);
        out.put("elapsed_seconds", round((System.nanoTime() - t0) / 1e9, 3));
        StringBuilder sb = new StringBuilder();
        json(sb, out);
        System.out.println(sb);
        System.out.flush();
        System.err.flush();
        // don't wait for lingering client threads
        Runtime.getRuntime().halt(code);
    }
}
