import CardDatabase
import Foundation
import PostgresClient
import Testing

/// Conninfo strings shown in messages (`db status`, connection failures) keep everything but
/// the password; libpq's own parser decides what the password is, in every form it accepts.
@Suite struct RedactionTests {
    /// Each conninfo with the password it holds (the text that must not appear in the output)
    /// and a piece of it that should still be shown.
    static let cases: [(conninfo: String, password: String, shown: String)] = [
        ("postgresql://clerk:s3cretpass@db.example:5433/cardsync", "s3cretpass", "db.example"),
        ("postgres://clerk:s3cret%40pass@db.example/cardsync", "s3cret", "clerk"),
        ("postgresql://clerk@db.example/cardsync?password=s3cretquery&connect_timeout=3", "s3cretquery", "connect_timeout=3"),
        ("postgresql://clerk@db.example/cardsync?sslmode=require&password=s3cret%20q", "s3cret", "sslmode=require"),
        ("host=/tmp dbname=x password=s3cretkv", "s3cretkv", "dbname=x"),
        ("host=/tmp dbname=x password = s3cretspaced", "s3cretspaced", "host=/tmp"),
        ("host=/tmp dbname=x password =s3cretleft user=clerk", "s3cretleft", "user=clerk"),
        ("host=/tmp dbname=x password= s3cretright", "s3cretright", "dbname=x"),
        ("host=/tmp password='s3cret with spaces' dbname=x", "s3cret", "dbname=x"),
        (#"host=/tmp password='it\'s s3cret' dbname=x"#, "s3cret", "dbname=x"),
        (#"host=/tmp password = 'back\\slash s3cret' dbname=x"#, "s3cret", "dbname=x"),
        ("host=/tmp sslpassword=s3cretkey dbname=x", "s3cretkey", "dbname=x"),
    ]

    @Test func everyFormKeepsThePasswordOut() {
        for (conninfo, password, shown) in Self.cases {
            let text = ConnectionTarget.redactedConninfo(conninfo)
            #expect(!text.contains(password), "\(conninfo) -> \(text)")
            #expect(text.contains(shown), "\(conninfo) -> \(text)")
            #expect(text.contains("***"), "\(conninfo) -> \(text)")
        }
    }

    @Test func valuesAreShownAsLibpqReadThem() {
        #expect(ConnectionTarget.redactedConninfo("host=/tmp dbname=x password = s3cret")
            == "host=/tmp dbname=x password=***")
        #expect(ConnectionTarget.redactedConninfo("postgresql://clerk:pw@db.example:5433/card%20sync")
            == "host=db.example port=5433 dbname='card sync' user=clerk password=***")
        #expect(ConnectionTarget.redactedConninfo("dbname=x application_name='a\\'b'") == #"dbname=x application_name='a\'b'"#)
        #expect(ConnectionTarget.redactedConninfo("host=/tmp dbname=x") == "host=/tmp dbname=x")
    }

    @Test func aConninfoLibpqCannotParseIsNotShownAtAll() {
        for conninfo in ["host=/tmp password='s3cret unterminated", "host=/tmp s3cretword", "postgresql://clerk:s3cret@[::1/db",
                         "nonsense=s3cret"] {
            let text = ConnectionTarget.redactedConninfo(conninfo)
            #expect(text == ConnectionTarget.unparsableConninfoPlaceholder, "\(conninfo) -> \(text)")
            #expect(!text.contains("s3cret"))
        }
    }

    @Test func aConninfoGivenAsTheDatabaseNameIsRedactedToo() {
        let text = ConnectionTarget.redactedConninfo("dbname='postgresql://clerk:s3cret@h/db'")
        #expect(!text.contains("s3cret"), "\(text)")
    }

    @Test func databaseSelectionDescribesItsConninfoThroughTheRedaction() {
        for (conninfo, password, _) in Self.cases {
            let flag = DatabaseSelection(flag: conninfo, environment: [:])
            #expect(flag.summary == "--database: " + ConnectionTarget.redactedConninfo(conninfo))
            #expect(!flag.summary.contains(password))
            let environment = DatabaseSelection(flag: nil, environment: ["CARDSYNC_DATABASE_URL": conninfo])
            #expect(environment.summary == "CARDSYNC_DATABASE_URL: " + ConnectionTarget.redactedConninfo(conninfo))
            #expect(DatabaseSelection.redacted(conninfo) == ConnectionTarget.redactedConninfo(conninfo))
        }
        let broken = DatabaseSelection(flag: "host=/tmp password='s3cret", environment: [:])
        #expect(!broken.summary.contains("s3cret"))
    }
}
