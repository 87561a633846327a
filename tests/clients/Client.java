// A real Java HTTP client fetching URLs in order, for integration_clients.
//
// usage: java Client.java LIBRARY USER-AGENT URL...
// LIBRARY: httpclient (java.net.http, one client: one connection kept
// alive) or urlconnection (java.net.HttpURLConnection).
// USER-AGENT: '-' keeps the library's default.
// For each URL one line: 'STATUS LENGTH SHA256' of what the library returned
// as the answer, or 'ERROR NAME' when it failed.
import java.io.InputStream;
import java.net.HttpURLConnection;
import java.net.URI;
import java.net.URL;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;

public class Client {
    static String line(int status, byte[] body) throws Exception {
        byte[] d = MessageDigest.getInstance("SHA-256").digest(body);
        return status + " " + body.length + " " + HexFormat.of().formatHex(d);
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 3 || !(args[0].equals("httpclient") || args[0].equals("urlconnection"))) {
            System.err.println("usage: java Client.java httpclient|urlconnection USER-AGENT URL...");
            System.exit(2);
        }
        String ua = args[1];
        HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(10)).build();
        for (int i = 2; i < args.length; i++) {
            try {
                if (args[0].equals("httpclient")) {
                    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(args[i]))
                            .timeout(Duration.ofSeconds(30));
                    if (!ua.equals("-"))
                        b.header("User-Agent", ua);
                    HttpResponse<byte[]> r = client.send(b.build(), HttpResponse.BodyHandlers.ofByteArray());
                    System.out.println(line(r.statusCode(), r.body()));
                } else {
                    HttpURLConnection c = (HttpURLConnection) new URL(args[i]).openConnection();
                    c.setReadTimeout(30000);
                    if (!ua.equals("-"))
                        c.setRequestProperty("User-Agent", ua);
                    int status = c.getResponseCode();
                    InputStream in = status >= 400 ? c.getErrorStream() : c.getInputStream();
                    System.out.println(line(status, in == null ? new byte[0] : in.readAllBytes()));
                }
            } catch (Exception e) {
                System.out.println("ERROR " + e.getClass().getSimpleName());
            }
            System.out.flush();
        }
    }
}
