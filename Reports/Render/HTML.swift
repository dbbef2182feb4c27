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

/// The stylesheet of every HTML report. Print is what it is for: A4 landscape, with page numbers
/// in the page margin; the same layout serves a screen. It holds no `@media print` rules on
/// purpose, so what the geometry test measures on a screen layout is what prints.
let reportCSS = """
@page { size: A4 landscape; margin: 12mm 10mm 13mm; }
* { box-sizing: border-box; }
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", "Helvetica Neue", Arial, sans-serif;
       color: #1d2733; margin: 0 auto; max-width: 277mm; padding: 0; font-size: 10pt; background: #fff; }
header { border-bottom: 3px solid #9b1c1c; padding-bottom: 3mm; margin-bottom: 4mm; }
header .issuer { color: #9b1c1c; font-size: 9pt; letter-spacing: .05em; }
h1 { font-size: 17pt; margin: 1mm 0 2mm; }
h2 { font-size: 12pt; margin: 5mm 0 2mm; color: #243447; border-left: 4px solid #9b1c1c; padding-left: 2mm; break-after: avoid; }
h3 { font-size: 10pt; margin: 0 0 1.5mm; break-after: avoid; }
dl.meta { display: flex; flex-wrap: wrap; gap: 1mm 8mm; margin: 0; font-size: 9pt; }
dl.meta div { display: flex; gap: 2mm; }
dl.meta dt { color: #5b6b7b; }
dl.meta dd { margin: 0; font-weight: 600; }
.notice { border: 1.5px solid #b7791f; background: #fff8e6; color: #5f3b00; padding: 2mm 3mm; margin: 0 0 4mm; font-size: 9.5pt; font-weight: 600; break-inside: avoid; }
table { border-collapse: collapse; width: 100%; font-size: 7pt; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #c9d1da; padding: 0.7mm 0.7mm; }
th { background: #eef2f6; font-weight: 600; text-align: center; vertical-align: bottom; line-height: 1.25; }
th .w { white-space: nowrap; }
td.num { text-align: right; white-space: nowrap; }
td.key { white-space: nowrap; }
td.key .name { white-space: normal; min-width: 36mm; max-width: 42mm; }
tr.total td { font-weight: 700; background: #fbf3f3; border-top: 2px solid #9b1c1c; }
tr.total + tr.total td { border-top: 1px solid #c9d1da; }
tr.group td { border-top: 1.5px solid #3d4a57; }
tbody tr:nth-child(even):not(.total) td { background: #f8fafc; }
thead { display: table-header-group; }
tr { break-inside: avoid; }
.charts-section { break-inside: avoid; }
.charts { display: flex; gap: 4mm; }
.charts figure { flex: 1 1 0; min-width: 0; }
section.agency { break-inside: avoid; margin-top: 4mm; }
figure { margin: 0; break-inside: avoid; border: 1px solid #dde3ea; padding: 2mm; border-radius: 1mm; }
figcaption { font-size: 9pt; font-weight: 600; margin-bottom: 1mm; }
.legend { display: flex; gap: 4mm; font-size: 8pt; margin: 1mm 0; flex-wrap: wrap; }
.legend span { display: inline-flex; align-items: center; gap: 1mm; }
.legend i { display: inline-block; width: 3mm; height: 3mm; }
svg { display: block; width: 100%; height: auto; }
svg text { font-family: inherit; }
footer { margin-top: 4mm; font-size: 7.5pt; color: #5b6b7b; border-top: 1px solid #c9d1da; padding-top: 2mm; }
footer p { margin: 0 0 1mm; break-inside: avoid; }  /* a definition is read whole: never one word alone on the next page */
.signoff { display: flex; gap: 10mm; margin-top: 8mm; font-size: 10pt; break-inside: avoid; }
.signoff div { flex: 1; display: flex; align-items: flex-end; gap: 2mm; }
.signoff span { flex: 1; border-bottom: 1px solid #1d2733; height: 8mm; }
"""

/// The `@page` rule that prints "Page 2 of 5" (in the report's language) and the report's title in
/// the bottom margin of every page: a page that comes loose from the file still says what it is.
/// Chromium (131 and later) prints page-margin boxes; a browser without them prints none.
func pageMarginCSS(title: String, labels l: Labels) -> String {
    func quoted(_ text: String) -> String {
        var out = "\""
        for ch in text.unicodeScalars {
            switch ch {
            case "\"", "\\": out += "\\" + String(ch)
            case _ where ch.value < 0x20 || ch.value == 0x7F: out += "\\" + String(ch.value, radix: 16) + " "
            default: out.unicodeScalars.append(ch)
            }
        }
        return out + "\""
    }
    let template = l["page.of"]
    let parts = template.components(separatedBy: "%1")
    let before = parts[0], rest = parts.count > 1 ? parts[1].components(separatedBy: "%2") : ["", ""]
    let content = [quoted(before), "counter(page)", quoted(rest[0]), "counter(pages)", quoted(rest.count > 1 ? rest[1] : "")]
        .filter { $0 != "\"\"" }.joined(separator: " ")
    let style = "font-family: \"Noto Sans CJK SC\", \"Source Han Sans SC\", \"Microsoft YaHei\", Arial, sans-serif; font-size: 8pt; color: #5b6b7b;"
    // A `<` in the title would end the style element: titles are labels and dates, but the
    // escape keeps that true whatever a label becomes.
    let safeTitle = quoted(title).replacingOccurrences(of: "<", with: "\\3c ")
    return "@page { @bottom-right { content: \(content); \(style) } @bottom-left { content: \(safeTitle); \(style) } }"
}

/// One HTML report: header with the context, an optional notice (a provisional or future
/// period), the tables with their definitions right below them, the charts, and the sign-off
/// block a filed report carries at its end.
func htmlDocument(lang: ReportLanguage, title: String, labels l: Labels, context: [(String, String)], notice: String?,
                  tables: String, footnote: String, charts: String) -> String {
    var out = "<!DOCTYPE html>\n<html lang=\"\(lang == .zh ? "zh-CN" : "en")\">\n<head>\n<meta charset=\"utf-8\">\n"
    out += "<title>\(escapeHTML(title))</title>\n<style>\n\(reportCSS)\n\(pageMarginCSS(title: title, labels: l))\n</style>\n</head>\n<body>\n"
    out += "<header>\n<div class=\"issuer\">\(escapeHTML(l["issuer"]))</div>\n<h1>\(escapeHTML(title))</h1>\n<dl class=\"meta\">\n"
    for (label, value) in context {
        out += "<div><dt>\(escapeHTML(label))</dt><dd>\(escapeHTML(value))</dd></div>\n"
    }
    out += "</dl>\n</header>\n"
    if let notice {
        out += "<div class=\"notice\" role=\"note\">\(escapeHTML(notice))</div>\n"
    }
    out += "<main>\n" + tables
    out += "<footer>" + footnote.components(separatedBy: "\n").map { "<p>\(escapeHTML($0))</p>" }.joined() + "</footer>\n"
    out += charts + "</main>\n"
    out += signoffHTML(l)
    out += "</body>\n</html>\n"
    return out
}

/// Prepared by / reviewed by / date, each with a line to sign on: the block a report carries
/// when it is filed.
func signoffHTML(_ l: Labels) -> String {
    "<div class=\"signoff\">" + ["signoff.prepared_by", "signoff.reviewed_by", "signoff.date"]
        .map { "<div>\(escapeHTML(l[$0]))<span></span></div>" }.joined() + "</div>\n"
}

extension ReportTable {
    /// The table as HTML. A heading breaks only between its words (`Labels.headingSegments`),
    /// never inside one. `groupStarts` are rows that begin a new group (an agency's intervals)
    /// and get a stronger rule above them.
    func renderHTMLTable(groupStarts: Set<Int> = []) -> String {
        let numeric = (0..<headers.count).map { c in rows.contains { $0.cells[c].isNumeric } }
        var out = "<table>\n<thead><tr>"
        for h in headers {
            let (words, spaced) = Labels.headingSegments(h)
            let inner = words.map { "<span class=\"w\">\(escapeHTML($0))</span>" }.joined(separator: spaced ? " " : "<wbr>")
            out += "<th scope=\"col\">\(inner)</th>"
        }
        out += "</tr></thead>\n<tbody>\n"
        for (r, row) in rows.enumerated() {
            let classes = (row.isTotal ? ["total"] : []) + (groupStarts.contains(r) && r > 0 ? ["group"] : [])
            out += classes.isEmpty ? "<tr>" : "<tr class=\"\(classes.joined(separator: " "))\">"
            for (c, cell) in row.cells.enumerated() {
                out += numeric[c] ? "<td class=\"num\">" : (c < keyColumns ? "<td class=\"key\">" : "<td>")
                // An agency name may be long free text from a queue: it wraps within its column
                // rather than push the table past the page's edge. The column keeps 36 mm, room
                // for a 14-character Chinese name on one line: squeezed narrower, every name
                // wraps, every row doubles and the monthly totals row falls onto page 2.
                out += c == truncatableKey ? "<div class=\"name\">\(escapeHTML(cell.display))</div></td>" : escapeHTML(cell.display) + "</td>"
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

/// The filed figures come first (page 1: the table, whole), the charts after them: a table that
/// spills a few rows onto a second page leaves that page nearly empty and splits what is signed.
func monthlyHTML(_ r: MonthlyReport, _ l: Labels) -> String {
    let table = monthlyTable(r, l)
    let names = r.agencies.map { $0.agencyName }
    let tables = "<h2>\(escapeHTML(l["table"]))</h2>\n" + table.renderHTMLTable()
    let charts = chartsSection(l, [
        figureHTML(
            caption: l["chart.received_issued"],
            legend: [(l["received"], colorReceived), (l["cards_issued"], colorIssued)],
            svg: groupedBarsSVG(categories: names, series: [r.agencies.map { $0.figures.received }, r.agencies.map { $0.figures.cardsIssued }],
                                colors: [colorReceived, colorIssued])),
        figureHTML(
            caption: l["chart.aging"],
            legend: (0..<4).map { (l.ageBucket($0), agingColors[$0]) },
            svg: stackedBarsSVG(categories: names, stacks: r.agencies.map { $0.figures.agingEnd.values }, colors: agingColors)),
    ])
    return htmlDocument(lang: l.lang, title: table.title, labels: l, context: table.context, notice: table.notice,
                        tables: tables, footnote: table.footnote, charts: charts)
}

/// The charts under their heading, kept on one page with it.
func chartsSection(_ l: Labels, _ figures: [String]) -> String {
    "<section class=\"charts-section\">\n<h2>\(escapeHTML(l["charts"]))</h2>\n<div class=\"charts\">\n" + figures.joined() + "</div>\n</section>\n"
}

func backlogHTML(_ r: BacklogReport, _ l: Labels) -> String {
    let table = backlogTable(r, l)
    let names = r.agencies.map { $0.agencyName }
    let tables = "<h2>\(escapeHTML(l["table"]))</h2>\n" + table.renderHTMLTable()
    let charts = chartsSection(l, [
        figureHTML(
            caption: l["chart.status"],
            legend: BacklogFigures.statuses.enumerated().map { (l.status($0.element), statusColors[$0.offset]) },
            svg: stackedBarsSVG(categories: names, stacks: r.agencies.map { a in BacklogFigures.statuses.map { a.figures.count($0) } },
                                colors: statusColors)),
        figureHTML(
            caption: l["chart.aging_asof"],
            legend: (0..<4).map { (l.ageBucket($0), agingColors[$0]) },
            svg: stackedBarsSVG(categories: names, stacks: r.agencies.map { $0.figures.aging.values }, colors: agingColors)),
    ])
    return htmlDocument(lang: l.lang, title: table.title, labels: l, context: table.context, notice: table.notice,
                        tables: tables, footnote: table.footnote, charts: charts)
}

/// The throughput report on paper: the totals per interval as a table of their own (not a run of
/// heavy-ruled totals rows after hundreds of agency rows), the agencies' intervals with a rule
/// between agencies, then each agency's charts kept with its heading.
func throughputHTML(_ r: ThroughputReport, _ l: Labels) -> String {
    let table = throughputTable(r, l)
    let agencyRows = table.rows.filter { !$0.isTotal }
    var totals = table
    totals.rows = table.rows.filter(\.isTotal).map { ReportTable.Row(cells: $0.cells, isTotal: false) }
    // The totals table names no agency: drop the code and name columns.
    totals.headers = Array(table.headers.dropFirst(2))
    totals.rows = totals.rows.map { ReportTable.Row(cells: Array($0.cells.dropFirst(2))) }
    totals.keyColumns = table.keyColumns - 2
    totals.truncatableKey = nil
    var byAgency = table
    byAgency.rows = agencyRows
    var groupStarts: Set<Int> = []
    var row = 0
    for agency in r.agencies {
        groupStarts.insert(row)
        row += agency.figures.count
    }
    var tables = "<h2>\(escapeHTML(l["table.totals_by_interval"]))</h2>\n" + totals.renderHTMLTable()
    if !agencyRows.isEmpty {
        tables += "<h2>\(escapeHTML(l["table.by_agency_interval"]))</h2>\n" + byAgency.renderHTMLTable(groupStarts: groupStarts)
    }
    var charts = "<h2>\(escapeHTML(l["charts"]))</h2>\n"
    let sections: [(String, [ThroughputFigures])] = [(l["all_agencies"], r.totals)]
        + r.agencies.map { ($0.agencyName + " (" + $0.agencyCode + ")", $0.figures) }
    let labels = r.totals.map { shortDate($0.start) }
    let partial = r.totals.map(\.partial)
    for (name, figures) in sections {
        // Heading and charts in one block that does not break: a heading never ends a page alone.
        charts += "<section class=\"agency\">\n<h3>\(escapeHTML(name))</h3>\n<div class=\"charts\">\n"
        charts += figureHTML(
            caption: l["chart.cumulative"],
            legend: [(l["cumulative_received"], colorReceived), (l["cumulative_closed"], colorClosed), (l["backlog"], "#c9d6e3")],
            svg: cumulativeFlowSVG(labels: labels, partial: partial, received: figures.map(\.received), closed: figures.map(\.closed),
                                   backlog: figures.map(\.backlogEnd)))
        charts += figureHTML(
            caption: l["chart.throughput"] + " (" + l.interval(r.interval) + ")",
            legend: [(l["received"], colorReceived), (l["closed"], colorClosed), (l["cards_issued"], colorIssued)],
            svg: intervalBarsSVG(labels: labels, partial: partial,
                                 series: [figures.map(\.received), figures.map(\.closed), figures.map(\.cardsIssued)],
                                 colors: [colorReceived, colorClosed, colorIssued]))
        charts += "</div>\n</section>\n"
    }
    return htmlDocument(lang: l.lang, title: table.title, labels: l, context: table.context, notice: table.notice,
                        tables: tables, footnote: table.footnote, charts: charts)
}

func shortDate(_ d: CivilDate) -> String {
    let m = d.month < 10 ? "0\(d.month)" : "\(d.month)"
    let day = d.day < 10 ? "0\(d.day)" : "\(d.day)"
    return "\(m)-\(day)"
}
