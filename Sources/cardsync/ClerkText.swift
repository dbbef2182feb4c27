import CardCore
import CardReports
import CardSync

/// The words of the clerk-facing commands (`queue status`, `queue quarantine`, `conflicts show`)
/// in English and Chinese, chosen with the same `--lang en|zh` as the reports.
///
/// Status words are the reports' own (`ReportLanguage.statusWord`): a clerk reads the same word
/// for a status at the counter and in the monthly report.
struct ClerkText {
    let lang: ReportLanguage

    /// A status as a word (`Approved`, `审核通过`), never the enum's name.
    func status(_ status: ApplicationStatus) -> String { lang.statusWord(status) }

    /// What a quarantine code means, in words a clerk can act on (queue-format.md, "Validation").
    private static let quarantineWords: [QuarantineCode: (en: String, zh: String)] = [
        .malformedJSON: ("the line is not a JSON object, or not valid UTF-8", "该行不是 JSON 对象，或不是有效的 UTF-8 文本"),
        .lineTooLong: ("the line is longer than 1 MiB", "该行超过 1 MiB"),
        .missingField: ("a required field is missing", "缺少必填字段"),
        .wrongType: ("a field has the wrong type (text, number, object)", "字段类型不正确（文本、数字或对象）"),
        .seqNotIncreasing: ("its seq is not greater than the seq of every earlier line", "seq 未大于之前各行的 seq"),
        .badUUID: ("event_id or application_id is not a UUID", "event_id 或 application_id 不是 UUID"),
        .unknownType: ("the event type is not one an agency may record", "事件类型不是经办机构可登记的类型"),
        .badTimestamp: ("the time is not RFC 3339 with an offset", "时间不是带时区偏移的 RFC 3339 格式"),
        .occurredInFuture: ("the time is more than 10 minutes in the future (check the counter's clock)", "时间比当前时间晚 10 分钟以上（请检查柜台电脑的时钟）"),
        .invalidIDNumber: ("the identity number is not a valid 18-character resident identity number", "身份证号码不是有效的 18 位居民身份号码"),
        .idBirthMismatch: ("birth date or sex does not match the identity number", "出生日期或性别与身份证号码不符"),
        .notAMinor: ("the child is 18 or older", "儿童已满 18 周岁"),
        .guardianNotAdult: ("the guardian is under 18", "监护人未满 18 周岁"),
        .missingDocument: ("a required document is missing (birth certificate, household register, guardian's ID)", "缺少必需材料（出生医学证明、户口簿、监护人身份证）"),
        .badPhone: ("the phone number is neither a mainland mobile nor a landline number", "电话号码既不是大陆手机号码也不是固定电话号码"),
        .immutableField: ("an amendment changes a field that cannot change (identity number, birth date, sex)", "更正修改了不可修改的字段（身份证号码、出生日期、性别）"),
        .badEnum: ("a value is outside its allowed set (sex, relationship, channel or document name)", "取值不在允许范围内（性别、关系、渠道或材料名称）"),
    ]

    /// The meaning of a quarantine code; a code this cardsync does not know is shown as it is.
    func quarantineReason(_ code: String) -> String {
        guard let known = QuarantineCode(rawValue: code), let words = Self.quarantineWords[known] else {
            return lang == .zh ? "未知原因（\(code)）" : "unknown reason (\(code))"
        }
        return lang == .zh ? words.zh : words.en
    }

    /// A conflict kind as words (`duplicate application`, `重复申请`).
    func kind(_ kind: ConflictKind) -> String {
        let words: (String, String)
        switch kind {
        case .duplicateApplication: words = ("duplicate application", "重复申请")
        case .concurrentAmendment: words = ("concurrent amendment", "同时更正")
        case .invalidTransition: words = ("invalid status change", "无效的状态变更")
        case .pendingExpired: words = ("pending too long", "等待超时")
        case .eventIdReuse: words = ("event id reused", "事件编号重复使用")
        }
        return lang == .zh ? words.1 : words.0
    }

    /// `open`/`resolved` as words.
    func conflictStatus(_ status: ConflictStatus) -> String {
        switch status {
        case .open: return lang == .zh ? "未解决" : "open"
        case .resolved: return lang == .zh ? "已解决" : "resolved"
        }
    }

    /// The column heading of an application by its role in a duplicate (`kept`, `held`).
    func applicationRole(_ role: String) -> String {
        switch role {
        case "kept": return lang == .zh ? "保留" : "KEPT"
        case "held": return lang == .zh ? "暂挂" : "HELD"
        default: return role.uppercased()
        }
    }

    /// A sentence by key in the chosen language.
    subscript(_ key: Key) -> String { lang == .zh ? key.zh : key.en }

    /// The sentences, each in both languages.
    struct Key {
        let en: String
        let zh: String
    }
}

extension ClerkText.Key {
    static let status = Self(en: "status", zh: "状态")
    static let applications = Self(en: "applications", zh: "申请数")
    static let line = Self(en: "line", zh: "行号")
    static let code = Self(en: "code", zh: "代码")
    static let reason = Self(en: "reason", zh: "原因")
    static let never = Self(en: "never", zh: "从未同步")
    static let none = Self(en: "none", zh: "无")
    // conflicts show
    static let detected = Self(en: "Detected", zh: "发现时间")
    static let agencies = Self(en: "Agencies", zh: "经办机构")
    static let resolved = Self(en: "Resolved", zh: "解决")
    static let note = Self(en: "Note", zh: "备注")
    static let whatHappened = Self(en: "What happened", zh: "经过")
    static let applicationsHeading = Self(en: "Applications", zh: "申请")
    static let fieldsMerged = Self(en: "Fields merged (both values of each field)", zh: "合并的字段（每个字段的两个值）")
    static let field = Self(en: "FIELD", zh: "字段")
    static let appliedColumn = Self(en: "APPLIED", zh: "已采用")
    static let notApplied = Self(en: "NOT APPLIED", zh: "未采用")
    static let now = Self(en: "NOW", zh: "当前")
    static let winner = Self(en: "WINNER", zh: "采用依据")
    static let lateAmendment = Self(en: "late-arriving amendment", zh: "后到的更正")
    static let alreadyApplied = Self(en: "change already applied", zh: "已生效的修改")
    static let eventsInvolved = Self(en: "Events involved", zh: "涉及的事件")
    static let eventsSent = Self(en: "Conflict events sent to agencies", zh: "发给经办机构的冲突事件")
    static let nothingToDecide = Self(en: "Nothing left to decide.", zh: "无需再作决定。")
    static let reviewOnce = Self(en: "Merged automatically; a reviewer may decide once:", zh: "已自动合并；审核人可作一次决定：")
    static let toResolve = Self(en: "To resolve:", zh: "解决方法：")
    static let applicationRow = Self(en: "application", zh: "申请编号")
    static let agencyRow = Self(en: "agency", zh: "经办机构")
    static let statusRow = Self(en: "status", zh: "状态")
    static let versionRow = Self(en: "version", zh: "版本")
    static let submittedAtRow = Self(en: "submitted at", zh: "提交时间")
    static let cardNumberRow = Self(en: "card number", zh: "卡号")
    static let notReceived = Self(en: "(not received centrally)", zh: "（中心未收到）")
    static let ledger = Self(en: "LEDGER", zh: "账本号")
    static let type = Self(en: "TYPE", zh: "类型")
    static let agencyColumn = Self(en: "AGENCY", zh: "经办机构")
    static let occurred = Self(en: "OCCURRED", zh: "发生时间")
    static let outcome = Self(en: "OUTCOME", zh: "结果")
    static let applicationColumn = Self(en: "APPLICATION", zh: "申请")
    static let statusColumn = Self(en: "STATUS", zh: "状态")
    static let system = Self(en: "system", zh: "系统")
    static let bureau = Self(en: "bureau", zh: "本局")
}
