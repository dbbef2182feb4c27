import CardCore

// One self-contained HTML file per report: inline CSS, inline SVG, no scripts, no external
// resources or links, laid out for A4 landscape print.

func escapeHTML(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.utf8.count)
    // Control characters and bidirectional overrides from queue-supplied names are shown as
    // escapes: U+202E would otherwise print the rest of a filed report's cell reversed.
    for ch in TerminalText.escapingControls(s, keepingNewlines: true).unicodeScalars {
        switch ch {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.unicodeScalars.append(ch)
        }
    }
    return out
}

let reportCSS = """
@page { size: A4 landscape; margin: 12mm 10mm; }
* { box-sizing: border-box; }
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", "Helvetica Neue", Arial, sans-serif;
       color: #1d2733; margin: 0 auto; max-width: 277mm; padding: 8mm 6mm; font-size: 10pt; background: #fff; }
header { border-bottom: 3px solid #9b1c1c; padding-bottom: 4mm; margin-bottom: 5mm; }
header .issuer { color: #9b1c1c; font-size: 9pt; letter-spacing: .05em; }
h1 { font-size: 18pt; margin: 1.5mm 0 2mm; }
h2 { font-size: 12pt; margin: 6mm 0 2mm; color: #243447; border-left: 4px solid #9b1c1c; padding-left: 2mm; }
h3 { font-size: 10pt; margin: 3mm 0 1mm; }
dl.meta { display: flex; flex-wrap: wrap; gap: 1mm 8mm; margin: 0; font-size: 9pt; }
dl.meta div { display: flex; gap: 2mm; }
dl.meta dt { color: #5b6b7b; }
dl.meta dd { margin: 0; font-weight: 600; }
table { border-collapse: collapse; width: 100%; font-size: 7pt; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #c9d1da; padding: 0.8mm 0.9mm; }
th { background: #eef2f6; font-weight: 600; text-align: center; vertical-align: bottom; }
td.num { text-align: right; white-space: nowrap; }
td.key { white-space: nowrap; }
tr.total td { font-weight: 700; background: #fbf3f3; border-top: 2px solid #9b1c1c; }
tbody tr:nth-child(even):not(.total) td { background: #f8fafc; }
thead { display: table-header-group; }
tr { page-break-inside: avoid; }
.charts { display: flex; flex-wrap: wrap; gap: 4mm; }
figure { margin: 0; page-break-inside: avoid; border: 1px solid #dde3ea; padding: 2mm; border-radius: 1mm; }
figcaption { font-size: 9pt; font-weight: 600; margin-bottom: 1mm; }
.legend { display: flex; gap: 4mm; font-size: 8pt; margin: 1mm 0; flex-wrap: wrap; }
.legend span { display: inline-flex; align-items: center; gap: 1mm; }
.legend i { display: inline-block; width: 3mm; height: 3mm; }
svg text { font-family: inherit; }
footer { margin-top: 5mm; font-size: 7.5pt; color: #5b6b7b; border-top: 1px solid #c9d1da; padding-top: 2mm; }
.page-break { page-break-before: always; }
"""

func htmlDocument(lang: ReportLanguage, title: String, labels l: Labels, context: [(String, String)], body: String,
                  footnote: String) -> String {
    var out = "<!DOCTYPE html>\n<html lang=\"\(lang == .zh ? "zh-CN" : "en")\">\n<head>\n<meta charset=\"utf-8\">\n"
    out += "<title>\(escapeHTML(title))</title>\n<style>\n\(reportCSS)\n</style>\n</head>\n<body>\n"
    out += "<header>\n<div class=\"issuer\">\(escapeHTML(l["issuer"]))</div>\n<h1>\(escapeHTML(title))</h1>\n<dl class=\"meta\">\n"
    for (label, value) in context {
        out += "<div><dt>\(escapeHTML(label))</dt><dd>\(escapeHTML(value))</dd></div>\n"
    }
    out += "</dl>\n</header>\n<main>\n" + body + "</main>\n"
    out += "<footer>\(escapeHTML(footnote))</footer>\n</body>\n</html>\n"
    return out
}

extension ReportTable {
    func renderHTMLTable() -> String {
        let numeric = (0..<headers.count).map { c in rows.contains { $0.cells[c].isNumeric } }
        var out = "<table>\n<thead><tr>"
        for h in headers { out += "<th scope=\"col\">\(escapeHTML(h))</th>" }
        out += "</tr></thead>\n<tbody>\n"
        for row in rows {
            out += row.isTotal ? "<tr class=\"total\">" : "<tr>"
            for (c, cell) in row.cells.enumerated() {
                out += numeric[c] ? "<td class=\"num\">" : (c < 2 ? "<td class=\"key\">" : "<td>")
                out += escapeHTML(cell.display) + "</td>"
            }
            out += "</tr>\n"
        }
        return out + "</tbody>\n</table>\n"
    }
}

func legendHTML(_ items: [(String, String)]) -> String {
    "<div class=\"legend\">" + items.map { "<span><i style=\"background:\($0.1)\"></i>\(escapeHTML($0.0))</span>" }.joined() + "</div>\n"
}

func figureHTML(caption: String, legend: [(String, String)], svg: String) -> String {
    "<figure>\n<figcaption>\(escapeHTML(caption))</figcaption>\n" + legendHTML(legend) + svg + "</figure>\n"
}

// MARK: - Report bodies

let colorReceived = "#2f6fae"
let colorIssued = "#d08c1f"
let colorClosed = "#3f8f5a"
let agingColors = ["#9cc9e8", "#5f9fcf", "#e8a25a", "#c0392b"]
let statusColors = ["#2f6fae", "#8e6bbf", "#3f8f5a", "#d08c1f", "#17a2b8", "#c0392b"]

func monthlyHTML(_ r: MonthlyReport, _ l: Labels) -> String {
    let table = monthlyTable(r, l)
    var body = "<h2>\(escapeHTML(l["charts"]))</h2>\n<div class=\"charts\">\n"
    let names = r.agencies.map { $0.agencyName }
    body += figureHTML(
        caption: l["chart.received_issued"],
        legend: [(l["received"], colorReceived), (l["cards_issued"], colorIssued)],
        svg: groupedBarsSVG(categories: names, series: [r.agencies.map { $0.figures.received }, r.agencies.map { $0.figures.cardsIssued }],
                            colors: [colorReceived, colorIssued]))
    body += figureHTML(
        caption: l["chart.aging"],
        legend: (0..<4).map { (l.ageBucket($0), agingColors[$0]) },
        svg: stackedBarsSVG(categories: names, stacks: r.agencies.map { $0.figures.agingEnd.values }, colors: agingColors))
    body += "</div>\n<h2>\(escapeHTML(l["table"]))</h2>\n" + table.renderHTMLTable()
    return htmlDocument(lang: l.lang, title: table.title, labels: l, context: table.context, body: body, footnote: table.footnote)
}

func backlogHTML(_ r: BacklogReport, _ l: Labels) -> String {
    let table = backlogTable(r, l)
    let names = r.agencies.map { $0.agencyName }
    var body = "<h2>\(escapeHTML(l["charts"]))</h2>\n<div class=\"charts\">\n"
    body += figureHTML(
        caption: l["chart.status"],
        legend: BacklogFigures.statuses.enumerated().map { (l.status($0.element), statusColors[$0.offset]) },
        svg: stackedBarsSVG(categories: names, stacks: r.agencies.map { a in BacklogFigures.statuses.map { a.figures.count($0) } },
                            colors: statusColors))
    body += figureHTML(
        caption: l["chart.aging_asof"],
        legend: (0..<4).map { (l.ageBucket($0), agingColors[$0]) },
        svg: stackedBarsSVG(categories: names, stacks: r.agencies.map { $0.figures.aging.values }, colors: agingColors))
    body += "</div>\n<h2>\(escapeHTML(l["table"]))</h2>\n" + table.renderHTMLTable()
    return htmlDocument(lang: l.lang, title: table.title, labels: l, context: table.context, body: body, footnote: table.footnote)
}

func throughputHTML(_ r: ThroughputReport, _ l: Labels) -> String {
    let table = throughputTable(r, l)
    var body = "<h2>\(escapeHTML(l["charts"]))</h2>\n"
    let sections: [(String, [ThroughputFigures])] = [(l["all_agencies"], r.totals)]
        + r.agencies.map { ($0.agencyName + " (" + $0.agencyCode + ")", $0.figures) }
    let labels = r.totals.map { shortDate($0.start) }
    for (name, figures) in sections {
        body += "<h3>\(escapeHTML(name))</h3>\n<div class=\"charts\">\n"
        body += figureHTML(
            caption: l["chart.cumulative"],
            legend: [(l["cumulative_received"], colorReceived), (l["cumulative_closed"], colorClosed), (l["backlog"], "#c9d6e3")],
            svg: cumulativeFlowSVG(labels: labels, received: figures.map(\.received), closed: figures.map(\.closed),
                                   backlog: figures.map(\.backlogEnd)))
        body += figureHTML(
            caption: l["chart.throughput"] + " (" + l.interval(r.interval) + ")",
            legend: [(l["received"], colorReceived), (l["closed"], colorClosed), (l["cards_issued"], colorIssued)],
            svg: intervalBarsSVG(labels: labels, series: [figures.map(\.received), figures.map(\.closed), figures.map(\.cardsIssued)],
                                 colors: [colorReceived, colorClosed, colorIssued]))
        body += "</div>\n"
    }
    body += "<h2 class=\"page-break\">\(escapeHTML(l["table"]))</h2>\n" + table.renderHTMLTable()
    return htmlDocument(lang: l.lang, title: table.title, labels: l, context: table.context, body: body, footnote: table.footnote)
}

func shortDate(_ d: CivilDate) -> String {
    let m = d.month < 10 ? "0\(d.month)" : "\(d.month)"
    let day = d.day < 10 ? "0\(d.day)" : "\(d.day)"
    return "\(m)-\(day)"
}
