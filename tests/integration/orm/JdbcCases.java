// pgJDBC 42.5: one INSERT per row, and addBatch()/executeBatch() with reWriteBatchedInserts off
// and on. Usage: java -cp postgresql.jar JdbcCases.java PORT CASE
import java.sql.*;

public class JdbcCases {
  static final int ROWS = 250;

  public static void main(String[] args) throws Exception {
    String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/pglens_orm?user=postgres";
    String kase = args[1];
    if (kase.equals("jdbc_batch_rewrite")) url += "&reWriteBatchedInserts=true";
    try (Connection c = DriverManager.getConnection(url)) {
      String sql = "INSERT INTO events (customer_id, kind, amount) VALUES (?, ?, ?)";
      try (PreparedStatement s = c.prepareStatement(sql)) {
        for (int i = 0; i < ROWS; ++i) {
          s.setInt(1, i % 20 + 1);
          s.setString(2, "click");
          s.setInt(3, i);
          if (kase.equals("jdbc_execute_per_row")) s.executeUpdate();
          else s.addBatch();
        }
        if (!kase.equals("jdbc_execute_per_row")) s.executeBatch();
      }
    }
  }
}
