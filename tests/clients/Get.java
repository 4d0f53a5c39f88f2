// A GET with java.net.http.HttpClient's defaults, as automation written in Java sends it: HTTP/2
// preferred, so on plain HTTP it offers an h2c upgrade. Prints the status, the Content-Type and
// the body, one per line. Run as a single source file: java Get.java URL
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;

public class Get {
    public static void main(String[] args) throws Exception {
        HttpClient client = HttpClient.newHttpClient();
        HttpRequest request = HttpRequest.newBuilder(URI.create(args[0])).GET().build();
        HttpResponse<String> response = client.send(request, HttpResponse.BodyHandlers.ofString());
        System.out.println(response.statusCode());
        System.out.println(response.headers().firstValue("content-type").orElse(""));
        System.out.print(response.body());
    }
}
