import CardCore
import Foundation

/// Every label, heading and status name a report prints, in English and Chinese.
/// Agency names are never translated: they are printed as registered.
///
/// A `|` in an entry marks where a table heading may break into lines. Chinese has no spaces,
/// and a browser left to itself breaks between any two characters (受/理, 期初积/压); the marks
/// name the word boundaries instead. They are removed from every label the subscript returns,
/// and only the HTML table heading reads them (`Labels.headingSegments`).
struct Labels {
    let lang: ReportLanguage

    private static let table: [String: (en: String, zh: String)] = [
        // titles and headings
        "monthly.title": ("Monthly card issuance report", "社保卡月度发卡报表"),
        "backlog.title": ("Application backlog report", "社保卡申请积压报表"),
        "throughput.title": ("Application throughput report", "社保卡申请办理量报表"),
        "issuer": ("Human Resources and Social Security Bureau — social security cards for children",
                   "人力资源和社会保障局 · 少儿社会保障卡"),
        "month": ("Month", "月份"),
        "period": ("Period", "统计期间"),
        "as_of": ("As of", "统计时点"),
        "timezone": ("Time zone", "时区"),
        "generated_at": ("Generated", "生成时间"),
        "sla_days": ("SLA (days)", "办理时限（天）"),
        "interval": ("Interval", "统计周期"),
        "interval.day": ("day", "日"),
        "interval.week": ("week (Monday to Sunday)", "周（周一至周日）"),
        "interval.month": ("month", "月"),
        "agency_scope": ("Agency", "经办|机构"),
        "table": ("Figures by agency", "分机构统计"),
        "charts": ("Charts", "图表"),
        "chart.received_issued": ("Applications received and cards issued, by agency", "各机构受理申请数与发卡数"),
        "chart.aging": ("Open applications at the end of the month, by age", "月末在办申请按时长分布"),
        "chart.aging_asof": ("Open applications by age", "在办申请按时长分布"),
        "chart.status": ("Open applications by status", "在办申请按状态分布"),
        "chart.cumulative": ("Cumulative flow", "累计流量图"),
        "chart.throughput": ("Throughput per interval", "各周期办理量"),
        "legend": ("Legend", "图例"),
        "total": ("Total", "合计"),
        "all_agencies": ("All agencies", "全部机构"),
        "none": ("none", "无"),
        "footnote.monthly": (
            "Definitions as in the bureau's report specification: received = applications submitted in the month at the agency; cards issued count at the agency that recorded the issue; backlog = applications open at the first instant of the month and of the next month; lead time = card issued − submitted, in days (median and 90th percentile, linear interpolation); totals are computed over all rows pooled, and a conflict between two agencies counts once in the totals.",
            "口径依照本局报表规范：受理数为本月在该机构提交的申请；发卡数计入登记发卡的机构；积压为本月首时刻及次月首时刻仍在办理的申请；办理时长为发卡时间减提交时间（天，中位数及第90百分位，线性插值）；合计按全部记录汇总计算，涉及两个机构的冲突在合计中只计一次。"),
        "footnote.backlog": (
            "Open: submitted at or before the instant and not closed by it. Age: whole days since submission. SLA breaches: open applications older than the SLA.",
            "在办：提交时间不晚于统计时点且在该时点前未办结。时长：自提交起的整天数。超时：在办时长超过办理时限的申请。"),
        "footnote.throughput": (
            "Intervals are local to the time zone; weeks start on Monday. Backlog at end: applications open at the end of the interval. Lead time median: cards issued in the interval.",
            "统计周期按所列时区的本地时间划分，每周自周一开始。期末积压：周期结束时仍在办理的申请。办理时长中位数：该周期内发卡的申请。"),
        // monthly columns
        "agency_code": ("Code", "机构|代码"),
        "agency_name": ("Agency", "经办|机构"),
        "received": ("Received", "受理"),
        "duplicates": ("Duplicates", "重复|申请"),
        "approved": ("Approved", "审核|通过"),
        "rejected": ("Rejected", "不予|通过"),
        "returned": ("Returned", "退回|补正"),
        "withdrawn": ("Withdrawn", "撤回"),
        "cards_produced": ("Cards produced", "制卡"),
        "cards_issued": ("Cards issued", "发卡"),
        "backlog_start": ("Backlog at start", "期初|积压"),
        "backlog_end": ("Backlog at end", "期末|积压"),
        "net_flow": ("Net flow", "净增"),
        "lead_median": ("Lead time median (days)", "办理|时长|中位数|（天）"),
        "lead_p90": ("Lead time P90 (days)", "办理|时长|P90|（天）"),
        "age_0_7": ("0-7 d", "0-7天"),
        "age_8_15": ("8-15 d", "8-15天"),
        "age_16_30": ("16-30 d", "16-30天"),
        "age_31_plus": ("31+ d", "31天|以上"),
        "sla_breaches": ("SLA breaches", "超时"),
        "conflicts_opened": ("Conflicts opened", "新增|冲突"),
        "conflicts_resolved": ("Conflicts resolved", "解决|冲突"),
        // backlog columns
        "open": ("Open", "在办|合计"),
        "oldest_age_days": ("Oldest (days)", "最长|时长|（天）"),
        "status.submitted": ("Submitted", "已提交"),
        "status.returned": ("Returned", "退回|补正"),
        "status.approved": ("Approved", "审核|通过"),
        "status.produced": ("Produced", "已制卡"),
        "status.dispatched": ("Dispatched", "已配送"),
        "status.on_hold": ("On hold", "暂挂"),
        // Not printed as statuses by the reports (they count these as closed), but clerks see them.
        "status.issued": ("Issued", "已发卡"),
        "status.rejected": ("Rejected", "不予通过"),
        "status.withdrawn": ("Withdrawn", "撤回"),
        // throughput columns
        "interval_start": ("From", "起"),
        "interval_end": ("To", "止"),
        "closed": ("Closed", "办结"),
        "lead_median_interval": ("Lead time median (days)", "办理|时长|中位数|（天）"),
        "backlog": ("Backlog", "积压"),
        "cumulative_received": ("Arrivals (backlog at start + received)", "累计到达（期初积压+受理）"),
        "cumulative_closed": ("Departures (closed)", "累计办结"),
        "partial": ("Partial", "部分|周期"),
        "partial.yes": ("yes", "是"),
        "footnote.partial": (
            "Partial: an interval clipped to the requested period (it starts on the first day asked for or ends on the last), so it covers fewer days than a whole interval; in the charts its bars are pale with a dashed outline and its date is marked *.",
            "部分周期：按所选统计期间截取的周期（始于所选首日或止于所选末日），天数少于完整周期；图中以浅色虚线框显示并在日期后标 *。"),
        // notices and sign-off
        "notice.month_incomplete": ("Provisional: the month is not over yet; the figures cover it up to %@ (when the report was generated).",
                                    "暂定数：本月尚未结束，数据截至报表生成时间 %@。"),
        "notice.month_future": ("The month has not begun yet (the report was generated %@): every figure about it is zero.",
                                "该月份尚未开始（报表生成于 %@），各项数据均为零。"),
        "notice.period_incomplete": ("Provisional: the period is not over yet; the figures cover it up to %@ (when the report was generated).",
                                     "暂定数：统计期间尚未结束，数据截至报表生成时间 %@。"),
        "notice.period_future": ("The period has not begun yet (the report was generated %@): every figure about it is zero.",
                                 "统计期间尚未开始（报表生成于 %@），各项数据均为零。"),
        "notice.asof_future": ("The instant is after the report was generated (%@): the figures are what was known then.",
                               "统计时点晚于报表生成时间 %@：数据为生成时已知的情况。"),
        "signoff": ("Sign-off", "签字栏"),
        "signoff.prepared_by": ("Prepared by", "制表人"),
        "signoff.reviewed_by": ("Reviewed by", "审核人"),
        "signoff.date": ("Date", "日期"),
        "page.of": ("Page %1 of %2", "第 %1 页，共 %2 页"),
        "table.totals_by_interval": ("All agencies, by interval", "全部机构分周期合计"),
        "table.by_agency_interval": ("By agency and interval", "分机构分周期统计"),
    ]

    subscript(_ key: String) -> String {
        guard let entry = Labels.table[key] else { return key }
        return (lang == .zh ? entry.zh : entry.en).replacingOccurrences(of: "|", with: "")
    }

    /// The label `key` with `value` in place of its `%@`.
    func filled(_ key: String, _ value: String) -> String {
        self[key].replacingOccurrences(of: "%@", with: value)
    }

    /// Where a table heading may break: the words of `heading` (a label as the subscript
    /// returned it), each to be kept on one line, and whether a space separates them. Headings
    /// with `|` marks in the table break only there; any other text breaks at its spaces only.
    static func headingSegments(_ heading: String) -> (words: [String], spaced: Bool) {
        if let marked = marked[heading] { return (marked, false) }
        return (heading.split(separator: " ").map(String.init), true)
    }

    private static let marked: [String: [String]] = {
        var out: [String: [String]] = [:]
        for entry in table.values {
            for text in [entry.en, entry.zh] where text.contains("|") {
                out[text.replacingOccurrences(of: "|", with: "")] = text.split(separator: "|").map(String.init)
            }
        }
        return out
    }()

    func status(_ status: ApplicationStatus) -> String { self["status." + status.rawValue] }
}

extension ReportLanguage {
    /// A status as a word in this language (`Approved`, `审核通过`): the reports' words, which the
    /// clerk-facing commands use too, so the counter and the monthly report say the same.
    public func statusWord(_ status: ApplicationStatus) -> String { Labels(lang: self).status(status) }
}

extension Labels {

    func interval(_ interval: ThroughputInterval) -> String { self["interval." + interval.rawValue] }

    /// The bucket label for an `AgingBuckets.keys` index.
    func ageBucket(_ index: Int) -> String { self[["age_0_7", "age_8_15", "age_16_30", "age_31_plus"][index]] }
}
