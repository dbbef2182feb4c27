/// Reference data for a realistic Changsha workload: districts with their real administrative
/// codes, streets, names, reasons. Arrays only (never dictionaries), so draws are deterministic.
enum ChangshaData {
    struct District {
        let name: String
        /// The 6-digit administrative division code (GB/T 2260).
        let code: String
        /// Used in agency codes: `CS-FR-001`.
        let abbreviation: String
        let roads: [String]
    }

    static let districts: [District] = [
        District(name: "芙蓉区", code: "430102", abbreviation: "FR",
                 roads: ["五一大道", "解放西路", "韶山北路", "蔡锷中路", "八一路", "人民东路", "车站北路", "远大一路"]),
        District(name: "天心区", code: "430103", abbreviation: "TX",
                 roads: ["劳动西路", "芙蓉中路", "书院路", "黄兴南路", "新开铺路", "湘府中路", "坡子街", "城南西路"]),
        District(name: "岳麓区", code: "430104", abbreviation: "YL",
                 roads: ["麓山南路", "枫林一路", "金星中路", "岳麓大道", "桐梓坡路", "潇湘中路", "银盆南路", "望月湖路"]),
        District(name: "开福区", code: "430105", abbreviation: "KF",
                 roads: ["湘江中路", "北辰大道", "四方坪路", "伍家岭路", "三一大道", "营盘东路", "中山路", "洪山路"]),
        District(name: "雨花区", code: "430111", abbreviation: "YH",
                 roads: ["韶山中路", "劳动东路", "万家丽中路", "香樟路", "湘府东路", "树木岭路", "井湾路", "时代阳光大道"]),
        District(name: "望城区", code: "430112", abbreviation: "WC",
                 roads: ["雷锋大道", "郭亮路", "旺旺东路", "金星北路", "普瑞大道", "腾飞路"]),
        District(name: "长沙县", code: "430121", abbreviation: "CSX",
                 roads: ["星沙大道", "开元东路", "东六路", "板仓路", "望仙路", "凉塘路"]),
        District(name: "浏阳市", code: "430181", abbreviation: "LY",
                 roads: ["金沙路", "白沙路", "北正路", "人民路", "圭斋路", "道吾路"]),
        District(name: "宁乡市", code: "430182", abbreviation: "NX",
                 roads: ["玉潭路", "一环路", "花明路", "新康路", "东沩路", "金洲大道"]),
    ]

    /// Region codes of guardians born outside Changsha: elsewhere in Hunan, and a few other cities.
    static let otherRegionCodes: [String] = [
        "430202", "430203", "430302", "430304", "430405", "430408", "430502", "430602", "430621",
        "430702", "430902", "431002", "431102", "431202", "431302", "433101", "430381",
        "110105", "310104", "440305", "420106", "360102", "500103", "450103",
    ]

    static let banks: [String] = ["长沙银行", "中国建设银行长沙", "中国工商银行长沙", "中国农业银行长沙", "湖南农信"]

    /// Common surnames, most frequent first (Hunan favours 刘, 彭, 谭, 曾 a little more than the country).
    static let surnames: [String] = [
        "王", "李", "刘", "张", "陈", "杨", "黄", "周", "彭", "吴", "赵", "曾", "谭", "邓", "唐",
        "胡", "罗", "邱", "肖", "徐", "孙", "朱", "何", "郭", "马", "林", "高", "梁", "谢", "宋",
        "许", "韩", "冯", "曹", "田", "董", "潘", "袁", "蔡", "蒋", "余", "杜", "叶", "程", "魏",
        "苏", "吕", "丁", "任", "卢", "姚", "沈", "钟", "姜", "崔", "陆", "范", "汪", "廖", "石",
        "贺", "龙", "易", "毛", "雷", "黎", "文", "向", "欧阳", "邹", "熊", "夏", "付", "方", "颜",
    ]
    /// Zipf-like weights for `surnames`.
    static let surnameWeights: [Double] = cumulative(surnames.indices.map { 1.0 / Double($0 + 4) })

    static let boyCharacters: [String] = [
        "梓", "子", "浩", "宇", "轩", "睿", "博", "泽", "辰", "逸", "宸", "铭", "俊", "杰", "航",
        "晨", "皓", "一", "诺", "奕", "嘉", "佑", "锦", "煜", "程", "瑞", "承", "景", "言", "安",
        "沐", "宁", "阳", "恒", "昊", "然", "天", "翔",
    ]
    static let girlCharacters: [String] = [
        "梓", "子", "涵", "欣", "怡", "雨", "萱", "诗", "语", "思", "可", "佳", "琪", "悦", "梦",
        "婉", "妍", "若", "一", "诺", "晨", "馨", "芷", "依", "彤", "安", "沐", "宁", "雅", "玥",
        "瑶", "琳", "桐", "希",
    ]
    static let manCharacters: [String] = [
        "伟", "强", "军", "勇", "磊", "涛", "斌", "杰", "建", "国", "华", "明", "志", "刚", "峰",
        "超", "辉", "鹏", "飞", "俊", "波", "亮", "海", "平", "林", "文", "龙", "成", "春", "永",
    ]
    static let womanCharacters: [String] = [
        "芳", "娟", "敏", "静", "丽", "艳", "霞", "玲", "婷", "燕", "红", "慧", "琳", "雪", "倩",
        "洁", "颖", "萍", "丹", "莉", "梅", "晶", "虹", "秀", "兰", "英", "琴", "佳", "璐", "蓉",
    ]

    /// Three-digit prefixes of mainland mobile numbers.
    static let mobilePrefixes: [String] = [
        "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "153",
        "155", "156", "157", "158", "159", "166", "173", "176", "177", "180", "181", "182", "183",
        "185", "186", "187", "188", "189", "191", "198", "199",
    ]

    static let rejectionReasons: [String] = [
        "该儿童已持有有效社会保障卡",
        "出生医学证明与户籍信息不一致",
        "监护关系证明材料不足",
        "非本市户籍人员，请至户籍地办理",
        "身份信息核验未通过",
    ]

    static let withdrawalReasons: [String] = [
        "监护人申请撤回",
        "已在其他网点办理",
        "户籍迁出本市",
        "信息录入有误，重新申请",
    ]

    /// What a returned application lacks, and what the agency then amends.
    enum Fix: Int, CaseIterable {
        case phone, photo, registerNumber, childName, address
    }

    static let returnReasons: [(reason: String, fix: Fix)] = [
        ("监护人联系电话无法接通，请核实", .phone),
        ("缺少儿童近期免冠照片", .photo),
        ("户口簿编号与户籍系统不一致", .registerNumber),
        ("儿童姓名与出生医学证明不一致", .childName),
        ("家庭住址信息不完整", .address),
    ]
}

/// The queue format's document names, in the order the spec lists them; a set of them is a bit mask.
enum Documents {
    static let names: [StaticString] = ["birth_certificate", "household_register", "guardian_id", "photo"]
    static let required: UInt8 = 0b0111
    static let all: UInt8 = 0b1111
    static let photo: UInt8 = 0b1000

    static func append(_ mask: UInt8, to b: inout [UInt8]) {
        b.append(0x5B)
        var first = true
        for (i, name) in names.enumerated() where mask & (1 << UInt8(i)) != 0 {
            if !first { JSONBytes.append(", ", to: &b) }
            first = false
            b.append(0x22); JSONBytes.append(name, to: &b); b.append(0x22)
        }
        b.append(0x5D)
    }
}
