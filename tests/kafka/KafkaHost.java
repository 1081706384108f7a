// Apache Kafka brokers for the gateway's end-to-end tests (tests/common/apache.rs drives this).
//
// Two modes, both real Apache Kafka 4.4 servers (kafka.server.KafkaRaftServer, what kafka.Kafka runs):
//
//   KafkaHost host DIR       many independent single-node KRaft clusters in one JVM, one per test,
//                            started and stopped by commands on stdin. A JVM costs seconds of CPU to
//                            start and warm up; a cluster inside a warm one starts in ~0.2 s, so each
//                            test gets a fresh cluster of its own without one JVM per test.
//   KafkaHost node PROPS CLUSTER_ID [SCRAM...]
//                            one node (broker, controller or both) as its own process, for tests that
//                            kill -9 a broker, restart it or add one to a multi-node cluster.
//
// Either mode halts the JVM as soon as stdin reaches end of file, i.e. when the test process that
// started it exits, however it exits (even SIGKILL): a test binary never leaves a JVM behind.
//
// Host commands (one per line, fields separated by single spaces, no field holds a space):
//   start NAME PROPS CLUSTER_ID [SCRAM...]   format PROPS' log dirs, start the server
//                                            -> "started NAME FORMAT_MS START_MS" or "failed NAME MESSAGE"
//   stop NAME                                -> "stopped NAME MS"
//   rss                                      -> "rss KIB"
// SCRAM is kafka-storage's --add-scram value: SCRAM-SHA-512=[name=gateway,password=gateway-secret].

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

import kafka.server.KafkaConfig;
import kafka.server.KafkaRaftServer;
import org.apache.kafka.common.utils.Time;

public class KafkaHost {
    private static final PrintStream OUT = new PrintStream(System.out, true, StandardCharsets.UTF_8);

    public static void main(String[] args) throws Exception {
        if (args.length >= 2 && args[0].equals("host")) {
            host();
        } else if (args.length >= 3 && args[0].equals("node")) {
            node(args);
        } else {
            System.err.println("usage: KafkaHost host DIR | KafkaHost node PROPS CLUSTER_ID [SCRAM...]");
            System.exit(2);
        }
    }

    /** Formats the log dirs of the node in `propsFile` unless already formatted (a restart). */
    private static long format(String propsFile, String clusterId, List<String> scram) {
        long t0 = System.nanoTime();
        List<String> argv = new ArrayList<>(List.of("format", "-t", clusterId, "-c", propsFile, "--ignore-formatted"));
        for (String s : scram) {
            argv.add("--add-scram");
            argv.add(s);
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        int rc = kafka.tools.StorageTool$.MODULE$.execute(argv.toArray(new String[0]),
                new PrintStream(out, true, StandardCharsets.UTF_8));
        if (rc != 0) {
            throw new IllegalStateException("kafka-storage format failed (" + rc + "): "
                    + out.toString(StandardCharsets.UTF_8).replace('\n', ' '));
        }
        return (System.nanoTime() - t0) / 1_000_000;
    }

    private static KafkaRaftServer server(String propsFile) throws IOException {
        Properties props = new Properties();
        try (InputStream in = Files.newInputStream(Path.of(propsFile))) {
            props.load(in);
        }
        return new KafkaRaftServer(KafkaConfig.fromProps(props, false), Time.SYSTEM);
    }

    private static void host() throws Exception {
        Map<String, KafkaRaftServer> servers = new HashMap<>();
        // Starts and stops run one at a time: the log lines of one cluster's start stay together, and
        // two starts racing for the 2 cores of a CI machine would each take longer than both in turn.
        ExecutorService worker = Executors.newSingleThreadExecutor();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            String[] f = line.trim().split(" ");
            switch (f[0]) {
                case "start" -> worker.submit(() -> {
                    String name = f[1];
                    try {
                        List<String> scram = List.of(f).subList(4, f.length);
                        long formatMs = format(f[2], f[3], scram);
                        long t0 = System.nanoTime();
                        KafkaRaftServer s = server(f[2]);
                        s.startup();
                        servers.put(name, s);
                        OUT.println("started " + name + " " + formatMs + " " + (System.nanoTime() - t0) / 1_000_000);
                    } catch (Throwable e) {
                        OUT.println("failed " + name + " " + String.valueOf(e).replace('\n', ' '));
                    }
                });
                case "stop" -> worker.submit(() -> {
                    long t0 = System.nanoTime();
                    KafkaRaftServer s = servers.remove(f[1]);
                    if (s != null) {
                        try {
                            s.shutdown();
                            s.awaitShutdown();
                        } catch (Throwable e) {
                            System.err.println("stop " + f[1] + ": " + e);
                        }
                    }
                    OUT.println("stopped " + f[1] + " " + (System.nanoTime() - t0) / 1_000_000);
                });
                case "rss" -> OUT.println("rss " + rssKib());
                default -> OUT.println("error unknown command " + f[0]);
            }
        }
        // The test binary is gone: nobody will talk to these clusters again, and a graceful shutdown
        // of each would only delay the exit. Their data lives in the test's temp dirs.
        Runtime.getRuntime().halt(0);
    }

    private static void node(String[] args) throws Exception {
        Thread watchdog = new Thread(() -> {
            try {
                while (System.in.read() >= 0) {
                    // nothing is sent on stdin; only its end matters
                }
            } catch (IOException e) {
                // a broken pipe means the same as end of file
            }
            Runtime.getRuntime().halt(0);
        }, "stdin-watchdog");
        watchdog.setDaemon(true);
        watchdog.start();
        List<String> scram = List.of(args).subList(3, args.length);
        long formatMs = format(args[1], args[2], scram);
        long t0 = System.nanoTime();
        KafkaRaftServer s = server(args[1]);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            s.shutdown();
            s.awaitShutdown();
        }, "shutdown"));
        s.startup();
        OUT.println("started node " + formatMs + " " + (System.nanoTime() - t0) / 1_000_000);
        s.awaitShutdown();
    }

    private static long rssKib() {
        try {
            for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (l.startsWith("VmRSS:")) {
                    return Long.parseLong(l.replaceAll("[^0-9]", ""));
                }
            }
        } catch (IOException e) {
            // not Linux: report 0 rather than fail a test over a statistic
        }
        return 0;
    }
}
