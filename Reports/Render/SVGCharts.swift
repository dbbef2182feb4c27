import CardCore
import Foundation

// Small inline SVG charts. Sizes are in CSS pixels; the viewBox lets them scale for print.
// No xmlns attribute is needed for SVG inside HTML, so the file holds no URL at all.

private func fmt(_ x: Double) -> String { String(format: "%.1f", x) }

/// A "nice" axis maximum (1, 2 or 5 times a power of ten) at or above `value`, and a tick step
/// that divides it into at most five whole-number intervals.
func niceAxis(_ value: Int) -> (maximum: Int, step: Int) {
    guard value > 0 else { return (1, 1) }
    var p = 1
    while p * 10 <= value { p *= 10 }
    for (maximum, step) in [(p, p / 5), (2 * p, p / 2), (5 * p, p), (10 * p, 2 * p)] where maximum >= value {
        return (maximum, max(1, step))
    }
    return (10 * p, 2 * p)
}

func niceMaximum(_ value: Int) -> Int { niceAxis(value).maximum }

private func svgOpen(width: Int, height: Int) -> String {
    "<svg width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" role=\"img\">\n"
}

/// Axis lines, gridlines and tick labels for a vertical value axis from 0 to `maximum`.
private func valueAxis(maximum: Int, x0: Double, x1: Double, y0: Double, y1: Double) -> String {
    var out = ""
    let step = niceAxis(maximum).maximum == maximum ? niceAxis(maximum).step : max(1, maximum / 4)
    var v = 0
    while v <= maximum {
        let y = y0 - (y0 - y1) * Double(v) / Double(maximum)
        out += "<line x1=\"\(fmt(x0))\" y1=\"\(fmt(y))\" x2=\"\(fmt(x1))\" y2=\"\(fmt(y))\" stroke=\"\(v == 0 ? "#7a8794" : "#e3e8ee")\" stroke-width=\"1\"/>\n"
        out += "<text x=\"\(fmt(x0 - 4))\" y=\"\(fmt(y + 3))\" font-size=\"9\" text-anchor=\"end\" fill=\"#5b6b7b\">\(v)</text>\n"
        v += step
    }
    return out
}

/// Labels under category bars are rotated by this many degrees (counter-clockwise) and end at
/// the bar: long agency names then fit under narrow bars without being cut.
private let labelAngle = 35.0
private let categoryFontSize = 9.0

/// A conservative estimate of a label's width in CSS pixels at `fontSize`: a wide (CJK)
/// character takes a full em, anything else 0.62 em (wider than Noto Sans's average Latin letter),
/// so the room left for a label is never too small. SVG cannot measure text without a script.
func estimatedTextWidth(_ text: String, fontSize: Double) -> Double {
    var width = 0.0
    for ch in text { width += (TerminalText.displayWidth(String(ch)) >= 2 ? 1.0 : 0.62) * fontSize }
    return width
}

/// Where the plot of a category chart starts and how much room is left under its axis, given
/// its labels: far enough right that the first label (which reaches left of its bar) stays inside
/// the picture, and deep enough for the longest label below the axis.
private func categoryLayout(_ categories: [String], slot: Double) -> (left: Double, bottom: Double) {
    let longest = categories.map { estimatedTextWidth($0, fontSize: categoryFontSize) }.max() ?? 0
    let radians = labelAngle * .pi / 180
    let reachLeft = longest * cos(radians) + categoryFontSize * sin(radians)
    let reachDown = longest * sin(radians) + categoryFontSize
    // The value axis's tick labels need 44 px; the first label's anchor is half a slot in.
    let left = max(44.0, (reachLeft - slot / 2 + 4).rounded(.up))
    let bottom = max(40.0, (12 + reachDown + 4).rounded(.up))
    return (left, bottom)
}

/// A category's name under its bar, whole: charts are filed on paper, where a cut name (with
/// the rest in a tooltip) helps nobody.
private func categoryLabel(_ text: String, x: Double, y: Double) -> String {
    "<text x=\"\(fmt(x))\" y=\"\(fmt(y))\" font-size=\"\(fmt(categoryFontSize))\" text-anchor=\"end\" fill=\"#1d2733\" transform=\"rotate(-\(fmt(labelAngle)) \(fmt(x)) \(fmt(y)))\">\(escapeHTML(text))</text>\n"
}

/// Side-by-side bars per category (e.g. received vs issued per agency).
func groupedBarsSVG(categories: [String], series: [[Int]], colors: [String]) -> String {
    let slot = max(22.0, min(56.0, 400.0 / Double(max(categories.count, 1))))
    let (left, bottom) = categoryLayout(categories, slot: slot)
    let top = 10.0, plotHeight = 170.0
    let width = Int(left + slot * Double(categories.count) + 12)
    let height = Int(top + plotHeight + bottom)
    let maximum = niceMaximum(series.flatMap { $0 }.max() ?? 0)
    let y0 = top + plotHeight
    var out = svgOpen(width: max(width, 200), height: height)
    out += valueAxis(maximum: maximum, x0: left, x1: left + slot * Double(categories.count), y0: y0, y1: top)
    let barWidth = (slot - 8) / Double(max(series.count, 1))
    for (i, name) in categories.enumerated() {
        let x = left + slot * Double(i) + 4
        for (s, values) in series.enumerated() {
            let v = values[i]
            let h = plotHeight * Double(v) / Double(maximum)
            out += "<rect x=\"\(fmt(x + barWidth * Double(s)))\" y=\"\(fmt(y0 - h))\" width=\"\(fmt(barWidth - 1))\" height=\"\(fmt(h))\" fill=\"\(colors[s])\"><title>\(escapeHTML(name)): \(v)</title></rect>\n"
        }
        out += categoryLabel(name, x: x + slot / 2, y: y0 + 12)
    }
    return out + "</svg>\n"
}

/// One stacked bar per category (e.g. open applications per agency by age bucket).
func stackedBarsSVG(categories: [String], stacks: [[Int]], colors: [String]) -> String {
    let slot = max(20.0, min(48.0, 400.0 / Double(max(categories.count, 1))))
    let (left, bottom) = categoryLayout(categories, slot: slot)
    let top = 10.0, plotHeight = 170.0
    let width = Int(left + slot * Double(categories.count) + 12)
    let height = Int(top + plotHeight + bottom)
    let maximum = niceMaximum(stacks.map { $0.reduce(0, +) }.max() ?? 0)
    let y0 = top + plotHeight
    var out = svgOpen(width: max(width, 200), height: height)
    out += valueAxis(maximum: maximum, x0: left, x1: left + slot * Double(categories.count), y0: y0, y1: top)
    for (i, name) in categories.enumerated() {
        let x = left + slot * Double(i) + 4
        var y = y0
        for (s, v) in stacks[i].enumerated() where v > 0 {
            let h = plotHeight * Double(v) / Double(maximum)
            y -= h
            out += "<rect x=\"\(fmt(x))\" y=\"\(fmt(y))\" width=\"\(fmt(slot - 8))\" height=\"\(fmt(h))\" fill=\"\(colors[s % colors.count])\"><title>\(escapeHTML(name)): \(v)</title></rect>\n"
        }
        out += categoryLabel(name, x: x + slot / 2, y: y0 + 12)
    }
    return out + "</svg>\n"
}

/// Date labels under an interval axis, at most about eight, with a `*` after a partial interval's.
/// A partial last interval's label is always shown, so the short interval that ends a chart says
/// what it is; the thinned-out label before it gives way when the two would overlap.
private func intervalAxisLabels(_ labels: [String], partial: [Bool], spacing: Double, x: (Int) -> Double, y: Double) -> String {
    let n = labels.count
    let every = max(1, Int((Double(n) / 8).rounded(.up)))
    var shown = Array(stride(from: 0, to: n, by: every))
    if n > 0, partial.last == true, shown.last != n - 1 {
        // "08-05*" is about 30 px wide at 8.5 px.
        if let k = shown.last, Double(n - 1 - k) * spacing < 34 { shown.removeLast() }
        shown.append(n - 1)
    }
    var out = ""
    for i in shown {
        let mark = i < partial.count && partial[i] ? "*" : ""
        out += "<text x=\"\(fmt(x(i)))\" y=\"\(fmt(y))\" font-size=\"8.5\" text-anchor=\"middle\" fill=\"#5b6b7b\">\(escapeHTML(labels[i] + mark))</text>\n"
    }
    return out
}

/// Cumulative flow: arrivals (the backlog at the period's start plus everything received since)
/// and departures (everything closed since) as two lines over the interval ends; the band between
/// them is the backlog.
func cumulativeFlowSVG(labels: [String], partial: [Bool], received: [Int], closed: [Int], backlog: [Int]) -> String {
    let left = 48.0, top = 10.0, plotWidth = 380.0, plotHeight = 150.0
    let width = Int(left + plotWidth + 14), height = Int(top + plotHeight + 26)
    let startBacklog = backlog.isEmpty ? 0 : max(0, backlog[0] - received[0] + closed[0])
    var arrivals: [Int] = [startBacklog], departures: [Int] = [0]
    for i in received.indices {
        arrivals.append(arrivals.last! + received[i])
        departures.append(departures.last! + closed[i])
    }
    let maximum = niceMaximum(arrivals.last ?? 0)
    let n = arrivals.count
    let x: (Int) -> Double = { i in left + plotWidth * Double(i) / Double(max(n - 1, 1)) }
    let y: (Int) -> Double = { v in top + plotHeight - plotHeight * Double(v) / Double(maximum) }
    var out = svgOpen(width: width, height: height)
    out += valueAxis(maximum: maximum, x0: left, x1: left + plotWidth, y0: top + plotHeight, y1: top)
    var band = "M" + arrivals.indices.map { "\(fmt(x($0))) \(fmt(y(arrivals[$0])))" }.joined(separator: " L")
    band += " L" + departures.indices.reversed().map { "\(fmt(x($0))) \(fmt(y(departures[$0])))" }.joined(separator: " L") + " Z"
    out += "<path d=\"\(band)\" fill=\"#c9d6e3\" stroke=\"none\"/>\n"
    for (values, color) in [(arrivals, colorReceived), (departures, colorClosed)] {
        let points = values.indices.map { "\(fmt(x($0))),\(fmt(y(values[$0])))" }.joined(separator: " ")
        out += "<polyline points=\"\(points)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"/>\n"
    }
    // Label each point with the date its interval starts; the last point is the period's end.
    out += intervalAxisLabels(labels, partial: partial, spacing: plotWidth / Double(max(n - 1, 1)), x: x, y: top + plotHeight + 14)
    return out + "</svg>\n"
}

/// Per-interval grouped bars (received, closed, issued). A partial interval's bars are pale with
/// a dashed outline: a short interval's low bars are not a drop in throughput.
func intervalBarsSVG(labels: [String], partial: [Bool], series: [[Int]], colors: [String]) -> String {
    let left = 44.0, top = 10.0, plotWidth = 380.0, plotHeight = 150.0
    let width = Int(left + plotWidth + 14), height = Int(top + plotHeight + 26)
    let n = max(labels.count, 1)
    let slot = plotWidth / Double(n)
    let maximum = niceMaximum(series.flatMap { $0 }.max() ?? 0)
    let y0 = top + plotHeight
    var out = svgOpen(width: width, height: height)
    out += valueAxis(maximum: maximum, x0: left, x1: left + plotWidth, y0: y0, y1: top)
    let barWidth = max(0.6, (slot * 0.8) / Double(max(series.count, 1)))
    for i in 0..<labels.count {
        let x = left + slot * Double(i) + slot * 0.1
        for (s, values) in series.enumerated() {
            let h = plotHeight * Double(values[i]) / Double(maximum)
            let style = i < partial.count && partial[i]
                ? " fill-opacity=\"0.35\" stroke=\"\(colors[s])\" stroke-width=\"0.8\" stroke-dasharray=\"2 1.5\"" : ""
            out += "<rect x=\"\(fmt(x + barWidth * Double(s)))\" y=\"\(fmt(y0 - h))\" width=\"\(fmt(barWidth))\" height=\"\(fmt(h))\" fill=\"\(colors[s])\"\(style)/>\n"
        }
    }
    out += intervalAxisLabels(labels, partial: partial, spacing: slot, x: { left + slot * (Double($0) + 0.5) }, y: y0 + 14)
    return out + "</svg>\n"
}
