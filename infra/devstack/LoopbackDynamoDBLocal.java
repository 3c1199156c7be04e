// Starts DynamoDB Local listening on 127.0.0.1 only.
//
// DynamoDB Local has no bind-address option: its Jetty server is built with `new Server(port)`,
// which listens on every interface, so a developer's tables would be open to the network. This
// launcher builds the server the way DynamoDB Local's own main does, then sets the host of each
// connector to the loopback address before the server starts.
//
// Mailroom's devstack package compiles it once (or runs it in Java's single-file source mode) with
// DynamoDBLocal.jar on the class path and DynamoDB Local's usual arguments:
//
//   java -cp DynamoDBLocal.jar:DynamoDBLocal_lib/* -Djava.library.path=DynamoDBLocal_lib \
//       LoopbackDynamoDBLocal.java -inMemory -sharedDb -port 8000 -disableTelemetry
//
// Two additions: "-port 0" binds any free port (DynamoDB Local itself rejects 0), which spares the
// devstack a race for a port with other stacks starting at the same moment; and the system
// property mailroom.portFile names a file that receives the bound port once the server accepts
// connections. Telemetry is never configured here, so nothing is sent whatever the arguments say.

import java.lang.reflect.Field;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

public class LoopbackDynamoDBLocal {
    static final String HOST = "127.0.0.1";

    public static void main(String[] args) {
        try {
            boolean anyPort = false;
            for (int i = 0; i + 1 < args.length; i++) {
                if (args[i].equals("-port") && args[i + 1].equals("0")) {
                    args[i + 1] = "8000"; // placeholder for the parser; replaced below
                    anyPort = true;
                }
            }
            DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
            Field f = DynamoDBProxyServer.class.getDeclaredField("server");
            f.setAccessible(true);
            Server server = (Server) f.get(proxy);
            ServerConnector first = null;
            for (Connector c : server.getConnectors()) {
                if (c instanceof ServerConnector sc) {
                    sc.setHost(HOST);
                    if (anyPort) {
                        sc.setPort(0);
                    }
                    if (first == null) {
                        first = sc;
                    }
                }
            }
            // Refuse to run rather than listen on every interface if DynamoDB Local ever changes
            // how it builds its server.
            if (first == null || server.getConnectors().length != 1) {
                System.err.println("LoopbackDynamoDBLocal: expected one Jetty ServerConnector, found "
                        + server.getConnectors().length);
                System.exit(2);
            }
            // SIGTERM runs this, so an on-disk database is closed cleanly.
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                try {
                    proxy.stop();
                } catch (Exception e) {
                    System.err.println("LoopbackDynamoDBLocal: stop: " + e);
                }
            }));
            server.start();
            int port = first.getLocalPort();
            System.out.println("LoopbackDynamoDBLocal: listening on " + HOST + ":" + port);
            String portFile = System.getProperty("mailroom.portFile");
            if (portFile != null) {
                // Written whole, then renamed, so a reader never sees a partial number.
                Path dst = Path.of(portFile);
                Path tmp = Path.of(portFile + ".tmp");
                Files.writeString(tmp, Integer.toString(port), StandardCharsets.US_ASCII);
                Files.move(tmp, dst, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            }
            server.join();
        } catch (Throwable t) {
            // Jetty's non-daemon threads can keep a failed JVM alive; exit so the devstack sees
            // the failure at once.
            System.err.println("LoopbackDynamoDBLocal: " + t);
            t.printStackTrace();
            System.exit(1);
        }
    }
}
