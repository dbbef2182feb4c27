import CardCore
import CardReports
import CardSync

/// "What happened" of `conflicts show` as text for a clerk, in English or Chinese, with statuses
/// as words. The conflict review's own findings (`ConflictDetail.findings`, kept in `--format
/// json`) name statuses by their codes (`now on_hold`) and are English only, so the text is
/// written here again from the same facts.
enum ConflictFindings {
    static func lines(_ d: ConflictDetail, lang: ReportLanguage) -> [String] {
        let w = ClerkText(lang: lang)
        let zh = lang == .zh
        let c = d.conflict
        func status(_ code: String?) -> String {
            guard let code else { return "?" }
            return ApplicationStatus(rawValue: code).map(w.status) ?? code
        }
        func describe(_ app: ConflictDetail.Application) -> String {
            let id = app.applicationID.lowercased
            guard app.known else { return zh ? "申请 \(id)（中心未收到）" : "application \(id) (not received centrally)" }
            return zh ? "\(app.owningAgency ?? "?") 的申请 \(id)" : "application \(id) of \(app.owningAgency ?? "?")"
        }
        var lines: [String] = []
        switch c.kind {
        case .duplicateApplication:
            let rule = c.detail["rule"]?.stringValue ?? ""
            for app in d.applications {
                let now = app.status.map(w.status) ?? (zh ? "未知" : "unknown")
                switch app.role {
                case "kept":
                    lines.append(zh ? "按重复申请规则保留（\(rule)）：\(describe(app))，当前状态：\(now)。"
                                    : "Kept by the duplicate rule (\(rule)): \(describe(app)), now \(now).")
                case "held":
                    let back = status(c.detail["held_status"]?.stringValue ?? "submitted")
                    lines.append(zh ? "暂挂：\(describe(app))，当前状态：\(now)；若保留，恢复为\(back)。"
                                    : "Put on hold: \(describe(app)), now \(now); kept, it returns to \(back).")
                default:
                    lines.append(zh ? "\(describe(app))，当前状态：\(now)。" : "\(describe(app)), now \(now).")
                }
            }
            if let by = c.detail["detected_by_event"]?.stringValue {
                lines.append(zh ? "同一儿童的提交事件 \(by) 到达时发现。" : "Detected when event \(by) (a submitted for the same child) arrived.")
            }
            if !c.isSettled, let card = d.applications.first(where: { $0.status == .issued }) {
                lines.append(zh ? "该儿童已有已发的卡（\(describe(card))）：只能保留该申请，其他申请随之撤回。补卡是另一项业务。"
                                : "The child already holds an issued card (\(describe(card))): only that application can be kept; the other is then withdrawn. A replacement card is a different procedure.")
            }
            if let kept = c.keptApplicationID {
                lines.append(zh ? "已解决：保留申请 \(kept.lowercased)，其他申请已撤回。"
                                : "Resolved by keeping application \(kept.lowercased); the others were withdrawn.")
            }
        case .concurrentAmendment:
            let base = c.detail["base_version"]?.intValue.map(String.init) ?? "?"
            let arrival = c.detail["version_at_arrival"]?.intValue.map(String.init) ?? "?"
            lines.append(zh ? "一项基于版本 \(base) 的更正到达时，申请已是版本 \(arrival)。"
                            : "An amendment based on version \(base) arrived when the application was at version \(arrival).")
            for f in d.fields {
                let applied = ConflictDetail.text(f.appliedValue), losing = ConflictDetail.text(f.losingValue)
                if f.winner == "this_event" {
                    lines.append(zh ? "\(f.path)：采用后到的更正中的 \(applied)（该更正发生在后）；未采用 \(losing)。"
                                    : "\(f.path): applied \(applied) from the late-arriving amendment, which occurred later; not applied \(losing).")
                } else {
                    lines.append(zh ? "\(f.path)：保留 \(applied)（在后到的更正之后修改）；未采用该更正中的 \(losing)。"
                                    : "\(f.path): kept \(applied), changed after the late-arriving amendment occurred; not applied \(losing) from that amendment.")
                }
            }
        case .invalidTransition:
            let type = c.detail["event_type"]?.stringValue ?? "?"
            let agency = d.events.first?.agencyCode
            let reason = c.detail["reason"]?.stringValue ?? ""
            let was = status(c.detail["status"]?.stringValue)
            lines.append(zh ? "\(agency.map { "来自 \($0) 的" } ?? "")\(type) 未生效：\(reason)（申请当时的状态：\(was)）。"
                            : "\(type)\(agency.map { " from \($0)" } ?? "") was not applied: \(reason) (the application was \(was)).")
        case .pendingExpired:
            let type = c.detail["event_type"]?.stringValue ?? "?"
            let waited = duration(c.detail["waited_seconds"]?.intValue ?? 0, zh: zh)
            let horizon = duration(c.detail["horizon_seconds"]?.intValue ?? 0, zh: zh)
            lines.append(zh ? "\(type) 等待其前提事件 \(waited)，超过等待期限（\(horizon)）。"
                            : "\(type) waited \(waited) for its prerequisite, longer than the pending horizon (\(horizon)).")
            for e in d.events {
                switch e.outcome {
                case "pending":
                    lines.append(zh ? "仍在等待：前提事件到达后自动生效，即使已 --dismiss。"
                                    : "It is still pending: it applies automatically if its prerequisite arrives, even after --dismiss.")
                case "applied":
                    lines.append(zh ? "前提事件已到达，该事件已生效。" : "Its prerequisite arrived since and it applied.")
                default:
                    lines.append(zh ? "已无法生效（\(e.outcome)）。" : "It can no longer apply (\(e.outcome)).")
                }
            }
        case .eventIdReuse:
            let incoming = c.detail["incoming"]
            let ledger = c.detail["existing_ledger_id"]?.intValue.map(String.init) ?? "?"
            let existing = c.detail["existing_type"]?.stringValue ?? "?"
            let type = incoming?["type"]?.stringValue ?? "?"
            let agency = incoming?["agency_code"]?.stringValue
            let seq = incoming?["seq"]?.intValue
            if zh {
                lines.append("账本事件 \(ledger)（\(existing)）使用该 event_id，保持原样生效。")
                lines.append("另一个使用相同 event_id 的事件（\(type)\(agency.map { "，来自 \($0)" } ?? "")\(seq.map { "，seq \($0)" } ?? "")）内容不同，未生效。")
            } else {
                lines.append("Ledger event \(ledger) (\(existing)) holds this event_id and stays applied as it was.")
                lines.append("A second event with the same event_id (\(type)\(agency.map { " from \($0)" } ?? "")\(seq.map { ", seq \($0)" } ?? "")) has different content and was not applied.")
            }
        }
        if c.status == .resolved, let outcome = c.outcome {
            let when = ConflictsCommand.time(c.resolvedAt)
            let note = c.note.map { zh ? "：\($0)" : ": \($0)" } ?? ""
            lines.append(zh ? "已于 \(when) 由 \(c.resolvedBy ?? "?") 以 \(outcome.rawValue) 解决\(note)。"
                            : "Resolved \(outcome.rawValue) on \(when) by \(c.resolvedBy ?? "?")\(note).")
        }
        return lines
    }

    /// `3d 4h`, `2h 5m`, `40m`; in Chinese `3天4小时`.
    static func duration(_ seconds: Int64, zh: Bool) -> String {
        let d = seconds / 86_400, h = seconds % 86_400 / 3600, m = seconds % 3600 / 60
        let (day, hour, minute, second) = zh ? ("天", "小时", "分钟", "秒") : ("d", "h", "m", "s")
        let gap = zh ? "" : " "
        if d > 0 { return h > 0 ? "\(d)\(day)\(gap)\(h)\(hour)" : "\(d)\(day)" }
        if h > 0 { return m > 0 ? "\(h)\(hour)\(gap)\(m)\(minute)" : "\(h)\(hour)" }
        if m > 0 { return "\(m)\(minute)" }
        return "\(seconds)\(second)"
    }
}
