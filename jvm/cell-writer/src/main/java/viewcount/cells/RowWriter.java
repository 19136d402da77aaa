package viewcount.cells;

import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.CqlSessionBuilder;
import com.datastax.oss.driver.api.core.config.DefaultDriverOption;
import com.datastax.oss.driver.api.core.config.DriverConfigLoader;
import com.datastax.oss.driver.api.core.cql.BatchStatement;
import com.datastax.oss.driver.api.core.cql.BatchStatementBuilder;
import com.datastax.oss.driver.api.core.cql.BoundStatement;
import com.datastax.oss.driver.api.core.cql.DefaultBatchType;
import com.datastax.oss.driver.api.core.cql.PreparedStatement;
import com.datastax.oss.driver.api.core.cql.Statement;
import com.datastax.oss.driver.api.core.type.DataType;
import com.datastax.oss.driver.api.core.type.DataTypes;
import com.datastax.oss.driver.api.core.ssl.ProgrammaticSslEngineFactory;

import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;

import java.io.FileInputStream;
import java.io.InputStream;
import java.io.Serializable;
import java.net.InetSocketAddress;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/**
 * Writes a DataFrame's rows with one prepared CQL statement, from the executors' JVMs: the
 * Python workers' ~22 µs of binding per row, off the counter's path (docs/benchmarks.md).
 *
 * <p>It knows no table and no rule. The statement and its connection come from
 * {@code storage.jvm_writer}; the row's columns bind to the statement's markers in order,
 * each converted to the marker's CQL type (epoch days to a date, epoch milliseconds to a
 * timestamp). Rows sharing their first {@code keyColumns} values (one partition) go out as
 * unlogged batches of at most {@code rowsPerBatch}, at most {@code concurrency} requests in
 * flight per task; any failure fails the task (Spark retries it, or the batch fails and is
 * replayed: every write is an absolute value, so a replay changes nothing).
 */
public final class RowWriter {
    private static final Map<Map<String, String>, CqlSession> SESSIONS = new ConcurrentHashMap<>();
    private static final Map<String, PreparedStatement> PREPARED = new ConcurrentHashMap<>();

    private RowWriter() {
    }

    /** The rows written, counted by the tasks that wrote them. Called from Python (py4j). */
    public static long write(Dataset<Row> rows, String statement, int keyColumns, int rowsPerBatch,
                             int concurrency, Map<String, String> connection) {
        Task task = new Task(statement, keyColumns, rowsPerBatch, concurrency, new HashMap<>(connection));
        long written = 0;
        for (Long count : rows.mapPartitions(task, Encoders.LONG()).collectAsList()) {
            written += count;
        }
        return written;
    }

    /** One task's rows: grouped per partition, written, counted. */
    static final class Task implements MapPartitionsFunction<Row, Long>, Serializable {
        private final String statement;
        private final int keyColumns;
        private final int rowsPerBatch;
        private final int concurrency;
        private final HashMap<String, String> connection;

        Task(String statement, int keyColumns, int rowsPerBatch, int concurrency, HashMap<String, String> connection) {
            this.statement = statement;
            this.keyColumns = keyColumns;
            this.rowsPerBatch = rowsPerBatch;
            this.concurrency = concurrency;
            this.connection = connection;
        }

        @Override
        public java.util.Iterator<Long> call(java.util.Iterator<Row> rows) throws Exception {
            if (!rows.hasNext()) {  // an idle batch's empty task: no connection
                return Collections.singletonList(0L).iterator();
            }
            CqlSession session = session(connection);
            String key = connection + "\u0000" + statement;
            PreparedStatement prepared = PREPARED.computeIfAbsent(key, k -> session.prepare(statement));
            List<DataType> types = new ArrayList<>();
            prepared.getVariableDefinitions().forEach(definition -> types.add(definition.getType()));
            Map<List<Object>, List<Object[]>> partitions = new LinkedHashMap<>();
            long count = 0;
            while (rows.hasNext()) {
                Row row = rows.next();
                Object[] values = new Object[types.size()];
                for (int i = 0; i < values.length; i++) {
                    values[i] = toCql(row.get(i), types.get(i));
                }
                List<Object> partition = new ArrayList<>(keyColumns);
                for (int i = 0; i < keyColumns; i++) {
                    partition.add(values[i]);
                }
                partitions.computeIfAbsent(partition, k -> new ArrayList<>()).add(values);
                count++;
            }
            Writes writes = new Writes(session, concurrency);
            for (List<Object[]> group : partitions.values()) {
                for (int start = 0; start < group.size(); start += rowsPerBatch) {
                    List<Object[]> chunk = group.subList(start, Math.min(group.size(), start + rowsPerBatch));
                    if (chunk.size() == 1) {
                        writes.send(prepared.bind(chunk.get(0)));
                        continue;
                    }
                    BatchStatementBuilder batch = BatchStatement.builder(DefaultBatchType.UNLOGGED);
                    for (Object[] values : chunk) {
                        batch.addStatement(prepared.bind(values));
                    }
                    writes.send(batch.build());
                }
            }
            writes.finish();
            return Collections.singletonList(count).iterator();
        }
    }

    /** Requests in flight, at most {@code concurrency}; the first failure is rethrown. */
    static final class Writes {
        private final CqlSession session;
        private final Semaphore permits;
        private final int concurrency;
        private final AtomicReference<Throwable> failure = new AtomicReference<>();

        Writes(CqlSession session, int concurrency) {
            this.session = session;
            this.concurrency = concurrency;
            this.permits = new Semaphore(concurrency);
        }

        void send(Statement<?> statement) throws Exception {
            permits.acquire();
            rethrow();
            CompletionStage<?> stage = session.executeAsync(statement);
            stage.whenComplete((result, error) -> {
                if (error != null) {
                    failure.compareAndSet(null, error);
                }
                permits.release();
            });
        }

        void finish() throws Exception {
            if (!permits.tryAcquire(concurrency, 5, TimeUnit.MINUTES)) {
                throw new IllegalStateException("Cassandra writes did not finish within 5 minutes");
            }
            permits.release(concurrency);
            rethrow();
        }

        private void rethrow() throws Exception {
            Throwable error = failure.get();
            if (error instanceof Exception) {
                throw (Exception) error;
            }
            if (error != null) {
                throw new RuntimeException(error);
            }
        }
    }

    /** A Spark value as the marker's CQL type wants it. */
    static Object toCql(Object value, DataType type) {
        if (value == null) {
            return null;
        }
        if (type.equals(DataTypes.DATE)) {
            if (value instanceof Number) {
                return LocalDate.ofEpochDay(((Number) value).longValue());
            }
            if (value instanceof java.sql.Date) {
                return ((java.sql.Date) value).toLocalDate();
            }
        } else if (type.equals(DataTypes.TIMESTAMP)) {
            if (value instanceof Number) {
                return Instant.ofEpochMilli(((Number) value).longValue());
            }
            if (value instanceof java.sql.Timestamp) {
                return ((java.sql.Timestamp) value).toInstant();
            }
        } else if (type.equals(DataTypes.BIGINT) && value instanceof Number) {
            return ((Number) value).longValue();
        } else if (type.equals(DataTypes.INT) && value instanceof Number) {
            return ((Number) value).intValue();
        }
        return value;
    }

    /** One session per connection per JVM, kept for the JVM's life (executors reuse it across tasks). */
    static CqlSession session(Map<String, String> connection) {
        return SESSIONS.computeIfAbsent(connection, RowWriter::connect);
    }

    private static CqlSession connect(Map<String, String> connection) {
        DriverConfigLoader config = DriverConfigLoader.programmaticBuilder()
            .withString(DefaultDriverOption.REQUEST_CONSISTENCY, connection.get("consistency"))
            .withDuration(DefaultDriverOption.REQUEST_TIMEOUT, Duration.ofSeconds(20))
            .withDuration(DefaultDriverOption.CONNECTION_CONNECT_TIMEOUT, Duration.ofSeconds(5))
            // The local datacenter is the contact points' (as the Python driver's default policy).
            .withString(DefaultDriverOption.LOAD_BALANCING_POLICY_CLASS, "DcInferringLoadBalancingPolicy")
            // After an outage a node is tried again within 10 s.
            .withDuration(DefaultDriverOption.RECONNECTION_BASE_DELAY, Duration.ofSeconds(1))
            .withDuration(DefaultDriverOption.RECONNECTION_MAX_DELAY, Duration.ofSeconds(10))
            .build();
        CqlSessionBuilder builder = CqlSession.builder().withConfigLoader(config)
            .withKeyspace(connection.get("keyspace"));
        int port = Integer.parseInt(connection.get("port"));
        for (String host : connection.get("hosts").split(",")) {
            builder.addContactPoint(new InetSocketAddress(host.trim(), port));
        }
        String username = connection.get("username");
        if (username != null && !username.isEmpty()) {
            builder.withAuthCredentials(username, connection.get("password"));
        }
        String ca = connection.get("ssl_ca");
        if (ca != null && !ca.isEmpty()) {
            builder.withSslEngineFactory(new ProgrammaticSslEngineFactory(trusting(ca), null, true));
        }
        return builder.build();
    }

    /** TLS that trusts the CA certificates in a PEM file (and checks the host name). */
    private static SSLContext trusting(String caFile) {
        try (InputStream pem = new FileInputStream(caFile)) {
            KeyStore store = KeyStore.getInstance(KeyStore.getDefaultType());
            store.load(null, null);
            int index = 0;
            for (Certificate certificate : CertificateFactory.getInstance("X.509").generateCertificates(pem)) {
                store.setCertificateEntry("ca-" + index++, certificate);
            }
            TrustManagerFactory trust = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            trust.init(store);
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(null, trust.getTrustManagers(), null);
            return context;
        } catch (Exception error) {
            throw new IllegalArgumentException("cannot read the Cassandra CA file " + caFile + ": " + error, error);
        }
    }
}
