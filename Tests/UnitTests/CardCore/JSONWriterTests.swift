import Testing
@testable import CardCore

@Suite("JSON writer")
struct JSONWriterTests {
    @Test func keysAreSortedAndOutputIsCompact() {
        let v: JSONValue = ["b": 1, "a": ["z": true, "y": nil], "c": [1, "x"]]
        #expect(JSONWriter.string(v) == #"{"a":{"y":null,"z":true},"b":1,"c":[1,"x"]}"#)
    }

    @Test func escapesQuotesBackslashAndControlCharacters() {
        let v = JSONValue.string("q\"b\\n\nr\rt\tb\u{8}f\u{C}z\u{0}e\u{1F}/")
        #expect(JSONWriter.string(v) == #""q\"b\\n\nr\rt\tb\bf\fz\u0000e\u001f/""#)
    }

    @Test func nonASCIIIsWrittenAsUTF8() {
        let v = JSONValue.string("王小明 😀 é")
        #expect(JSONWriter.string(v) == "\"王小明 😀 é\"")
    }

    @Test func numbers() {
        #expect(JSONWriter.string(.int(0)) == "0")
        #expect(JSONWriter.string(.int(-42)) == "-42")
        #expect(JSONWriter.string(.int(Int64.max)) == "9223372036854775807")
        #expect(JSONWriter.string(.int(Int64.min)) == "-9223372036854775808")
        #expect(JSONWriter.string(.double(0.1)) == "0.1")
        #expect(JSONWriter.string(.double(100)) == "100.0")
        #expect(JSONWriter.string(.double(1e-7)) == "1e-07")
        #expect(JSONWriter.string(.double(.nan)) == "null")
        #expect(JSONWriter.string(.double(.infinity)) == "null")
    }

    @Test func doublesRoundTrip() throws {
        for d in [0.1, 1.0 / 3.0, 123_456.789, Double.leastNonzeroMagnitude, 1.7976931348623157e308, -2.5e-10, 1e21] {
            let text = JSONWriter.string(.double(d))
            #expect(try JSONParser.parse(text) == .double(d), "\(text)")
        }
    }

    @Test func roundTripThroughParser() throws {
        let text = #"{"seq":17,"data":{"child":{"name":"王小明","sex":"M"},"documents":["photo"],"x":[1.5,null,false,"a\"\\\n"]}}"#
        let v = try JSONParser.parse(text)
        let written = JSONWriter.string(v)
        #expect(try JSONParser.parse(written) == v)
        // Writing is deterministic: the same value gives the same bytes.
        #expect(JSONWriter.string(try JSONParser.parse(written)) == written)
    }

    @Test func orderedObjectKeepsTheGivenKeyOrder() {
        let line = JSONWriter.object([("line", 3), ("raw", "{\"a\":1}"), ("error", "bad_phone"), ("detail", "x")])
        #expect(line == #"{"line":3,"raw":"{\"a\":1}","error":"bad_phone","detail":"x"}"#)
        let nested: OrderedJSON = .object([("z", .object([("b", 1), ("a", 2)])), ("a", [.raw(Array("{\"k\":1}".utf8))])])
        #expect(JSONWriter.string(nested) == #"{"z":{"b":1,"a":2},"a":[{"k":1}]}"#)
    }

    @Test func prettyPrintingIndentsByTwoSpaces() {
        let v: JSONValue = ["b": [1, 2], "a": [:], "c": []]
        #expect(JSONWriter.string(v, pretty: true) == """
        {
          "a": {},
          "b": [
            1,
            2
          ],
          "c": []
        }
        """)
        let o: OrderedJSON = .object([("agencies", [.object([("agency_code", "CS-FR-001"), ("pushed", 3)])])])
        #expect(JSONWriter.string(o, pretty: true) == """
        {
          "agencies": [
            {
              "agency_code": "CS-FR-001",
              "pushed": 3
            }
          ]
        }
        """)
    }
}
