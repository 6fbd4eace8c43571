import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

/**
 * Starts Amazon's DynamoDB Local bound to 127.0.0.1 only. DynamoDB Local has no option for the address it
 * listens on and binds every interface; this launcher builds the server from the same command line, binds
 * its Jetty connectors to loopback before they open, and starts it. Run with the single-file source launcher:
 * java -cp "DynamoDBLocal.jar:DynamoDBLocal_lib/*" LoopbackDynamoDbLocal.java -inMemory -port N -disableTelemetry
 *
 * It ends when its standard input does: the process that started it holds the other end, and even a
 * SIGKILL of that process, which runs no exit hook, closes it.
 */
public class LoopbackDynamoDbLocal {
  public static void main(String[] args) throws Exception {
    DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
    Field serverField = DynamoDBProxyServer.class.getDeclaredField("server");
    serverField.setAccessible(true);
    Server server = (Server) serverField.get(proxy);
    for (Connector connector : server.getConnectors()) {
      ((ServerConnector) connector).setHost("127.0.0.1");
    }
    proxy.start();
    System.out.println("DynamoDB Local listening on 127.0.0.1");
    Thread parentWatch = new Thread(() -> {
      try {
        while (System.in.read() != -1) {
          // Nothing is ever sent: the read only waits for the end of the stream.
        }
      } catch (java.io.IOException error) {
        // A broken pipe ends the stream as surely as a closed one.
      }
      Runtime.getRuntime().halt(0);
    });
    parentWatch.setDaemon(true);
    parentWatch.start();
    proxy.join();
  }
}
