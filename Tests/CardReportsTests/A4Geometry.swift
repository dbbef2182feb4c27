import CardCore
@testable import CardReports
import Foundation

/// A city shaped like the bureau's: 13 agencies, among them long Chinese names and one long
/// English name, with applications from August to October 2026, so that the reports have a wide
/// monthly table, long chart labels and a throughput table over several pages.
enum A4City {
    static let agencies: [(String, String)] = [
        ("CS-CSX-001", "长沙县社保卡服务网点"), ("CS-FR-001", "芙蓉区社保卡服务网点"),
        ("CS-FR-002", "芙蓉区政务服务中心社保卡窗口"), ("CS-KF-001", "开福区社保卡服务网点"),
        ("CS-LY-001", "浏阳市社保卡服务网点"), ("CS-NX-001", "宁乡市社保卡服务网点"),
        ("CS-ONLINE", "长沙市社保卡网上服务大厅"), ("CS-TX-001", "天心区社保卡服务网点"),
        ("CS-TX-002", "天心区政务服务中心社保卡窗口"), ("CS-WC-001", "望城区社保卡服务网点"),
        ("CS-YH-001", "雨花区社保卡服务网点"), ("CS-YL-001", "岳麓区社保卡服务网点"),
        ("CS-EN-001", "Kaifu District Social Security Card Service Point"),
    ]

    /// Per agency, applications submitted every few days from Aug 1: most issued 10 to 30 days
    /// later, some still open, so that every figure and chart has something to show.
    static func load(into f: ReportFixture) throws {
        var n = 100
        for (k, (code, name)) in agencies.enumerated() {
            try f.agency(code, name)
            for j in 0..<(6 + k % 5) {
                n += 1
                let id = HandMade.id(n)
                let submittedDay = 1 + (j * 13 + k * 5) % 85          // Aug 1 + 0…84 days
                let submitted = instant(dayOfAugust: submittedDay, hour: 2 + j % 6)
                if j % 3 == 2 {
                    try f.application(id, owner: code, submitted: submitted, status: .submitted)
                    try f.event(id, .submitted, submitted, agency: code)
                } else {
                    let issued = instant(dayOfAugust: submittedDay + 10 + (j * 7 + k) % 21, hour: 3)
                    try f.application(id, owner: code, submitted: submitted, status: .issued, closed: issued)
                    try f.event(id, .submitted, submitted, agency: code)
                    try f.event(id, .cardIssued, issued, agency: code)
                }
            }
        }
    }

    /// An RFC 3339 instant `day - 1` days after Aug 1, 2026, at `hour` UTC.
    static func instant(dayOfAugust day: Int, hour: Int) -> String {
        let date = CivilDate(dayNumber: CivilDate(iso: "2026-08-01")!.dayNumber + day - 1)
        return date.description + "T" + (hour < 10 ? "0" : "") + String(hour) + ":00:00Z"
    }
}

/// What the geometry probe reads off a report laid out in Chromium.
struct Geometry: Decodable {
    struct Heading: Decodable {
        var text: String
        var lines: [String]
    }
    struct Label: Decodable {
        var text: String
        var clipped: Bool
        var box: String
    }
    /// The page's width (the body's content box) in CSS pixels.
    var pageWidth: Double
    /// Elements reaching past the page's left or right edge, or text wider than its cell.
    var overflow: [String]
    /// Each table heading and the text of each line it was laid out in.
    var headings: [Heading]
    /// Every text in every chart, and whether it sticks out of the chart's picture (and is cut).
    var svgText: [Label]
    /// Per table, the rows drawn with a heavy (2 px or more) rule above them.
    var heavyRules: [Int]
}

enum GeometryProbe {
    /// A script that measures the laid-out page and writes what it found into `<pre id="geometry">`
    /// (percent-encoded JSON, so the DOM dump holds it verbatim). It is added to a copy of the
    /// report under test only: the reports themselves hold no script.
    static let script = #"""
    <script>
    (function () {
      const px = (v) => parseFloat(v) || 0;
      const body = document.body, bs = getComputedStyle(body), br = body.getBoundingClientRect();
      const left = br.left + px(bs.paddingLeft), right = br.right - px(bs.paddingRight);
      const out = { pageWidth: right - left, overflow: [], headings: [], svgText: [], heavyRules: [] };
      const describe = (el) => el.tagName.toLowerCase() + (typeof el.className === 'string' && el.className ? '.' + el.className : '')
        + ' "' + (el.textContent || '').trim().slice(0, 50) + '"';
      for (const el of body.querySelectorAll('*')) {
        if (el.tagName === 'SCRIPT' || el.id === 'geometry') continue;
        const r = el.getBoundingClientRect();
        if (r.width === 0 && r.height === 0) continue;
        if (r.right > right + 0.5 || r.left < left - 0.5)
          out.overflow.push(describe(el) + ' spans ' + r.left.toFixed(1) + '..' + r.right.toFixed(1) + ' px, the page ' + left.toFixed(1) + '..' + right.toFixed(1));
      }
      // Text that does not wrap (a figure, a name, a heading's word) can stick out of its cell
      // without making any box wider.
      for (const cell of body.querySelectorAll('th, td')) {
        if (cell.scrollWidth > cell.clientWidth + 1) out.overflow.push(describe(cell) + ' is wider than its cell');
      }
      // A heading's lines: its characters grouped by the top of their boxes.
      for (const th of body.querySelectorAll('th')) {
        const lines = [];
        let lastTop = null;
        const walker = document.createTreeWalker(th, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
          for (let i = 0; i < node.data.length; i++) {
            const range = document.createRange();
            range.setStart(node, i);
            range.setEnd(node, i + 1);
            const rects = range.getClientRects();
            if (rects.length === 0 || rects[0].width === 0) continue;
            const top = rects[0].top;
            if (lastTop === null || top > lastTop + 2) { lines.push(''); lastTop = top; }
            lines[lines.length - 1] += node.data[i];
          }
        }
        out.headings.push({ text: th.textContent, lines: lines });
      }
      for (const svg of body.querySelectorAll('svg')) {
        const s = svg.getBoundingClientRect();
        for (const t of svg.querySelectorAll('text')) {
          const r = t.getBoundingClientRect();
          const clipped = r.left < s.left - 0.5 || r.right > s.right + 0.5 || r.top < s.top - 0.5 || r.bottom > s.bottom + 0.5;
          out.svgText.push({ text: t.textContent, clipped: clipped,
            box: r.left.toFixed(1) + ',' + r.top.toFixed(1) + '..' + r.right.toFixed(1) + ',' + r.bottom.toFixed(1)
              + ' in ' + s.left.toFixed(1) + ',' + s.top.toFixed(1) + '..' + s.right.toFixed(1) + ',' + s.bottom.toFixed(1) });
        }
      }
      for (const table of body.querySelectorAll('table')) {
        let heavy = 0;
        for (const row of table.querySelectorAll('tbody tr')) {
          if (row.cells.length && px(getComputedStyle(row.cells[0]).borderTopWidth) >= 2) heavy++;
        }
        out.heavyRules.push(heavy);
      }
      const pre = document.createElement('pre');
      pre.id = 'geometry';
      pre.textContent = encodeURIComponent(JSON.stringify(out));
      body.appendChild(pre);
    })();
    </script>
    """#

    /// Lays `html` out in Chromium and measures it. `extraCSS` is added after the report's own
    /// style (to lay it out narrower than A4, say).
    static func measure(_ html: String, in dir: URL, name: String, extraCSS: String = "") throws -> Geometry {
        var probe = html.replacingOccurrences(of: "</body>", with: script + "\n</body>")
        if !extraCSS.isEmpty { probe = probe.replacingOccurrences(of: "</style>", with: extraCSS + "\n</style>") }
        let file = dir.appendingPathComponent(name + "-probe.html")
        try probe.write(to: file, atomically: true, encoding: .utf8)
        let dom = try Chromium.dumpDOM(file, profile: dir.appendingPathComponent("profile-" + name).path)
        guard let start = dom.range(of: "<pre id=\"geometry\">"),
              let end = dom.range(of: "</pre>", range: start.upperBound..<dom.endIndex),
              let json = String(dom[start.upperBound..<end.lowerBound]).removingPercentEncoding
        else { throw Chromium.Failure(description: "\(name): the probe wrote no measurements; the DOM was \(dom.prefix(500))") }
        return try JSONDecoder().decode(Geometry.self, from: Data(json.utf8))
    }

    /// The lines of a heading that break inside a word (`Labels.headingSegments`): empty when
    /// every line is made of whole words.
    static func brokenWords(_ heading: Geometry.Heading) -> [String] {
        let (words, spaced) = Labels.headingSegments(heading.text)
        var next = 0
        var broken: [String] = []
        for line in heading.lines {
            let target = line.trimmingCharacters(in: .whitespaces)
            var joined = ""
            while next < words.count && joined.count < target.count {
                joined += (joined.isEmpty ? "" : (spaced ? " " : "")) + words[next]
                next += 1
            }
            if joined != target { broken.append(target) }
        }
        return broken
    }
}
