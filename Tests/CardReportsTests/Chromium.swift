import Foundation

/// Headless Chromium and poppler's tools, to measure the HTML reports as a browser lays them out
/// and prints them on A4. The geometry tests skip when they are missing (Deploy/install-dependencies.sh
/// installs them for CI: chromium, fonts-noto-cjk, poppler-utils).
enum Chromium {
    /// The first of the usual names on PATH.
    static let path: String? = executable(["chromium", "chromium-browser", "google-chrome"])
    static let pdfinfo: String? = executable(["pdfinfo"])
    static let pdftotext: String? = executable(["pdftotext"])

    /// Everything the geometry tests need is installed.
    static var available: Bool { path != nil && pdfinfo != nil && pdftotext != nil }

    static let missingMessage = "chromium or poppler-utils is not installed: apt-get install -y chromium fonts-noto-cjk poppler-utils"

    static func executable(_ names: [String]) -> String? {
        let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init)
        for name in names {
            for dir in dirs where FileManager.default.isExecutableFile(atPath: dir + "/" + name) { return dir + "/" + name }
        }
        return nil
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs a program with a time limit; its standard output, or a failure naming what went wrong.
    static func run(_ program: String, _ arguments: [String], timeout: TimeInterval = 90) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Read while it runs: a DOM larger than the pipe's buffer would block it otherwise.
        nonisolated(unsafe) var output = Data()
        let reader = DispatchQueue(label: "chromium-stdout")
        let group = DispatchGroup()
        group.enter()
        reader.async {
            output = out.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            throw Failure(description: "\(program) \(arguments.joined(separator: " ")) did not finish in \(Int(timeout)) s")
        }
        group.wait()
        let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw Failure(description: "\(program) exited \(process.terminationStatus): \(errors.suffix(2000))")
        }
        return output
    }

    /// The flags of Deploy/render-report-screenshot.sh: no sandbox (root), no GPU, a profile of its
    /// own, and every network request sent to a closed port, so a page renders from its own bytes.
    static func flags(profile: String) -> [String] {
        ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--user-data-dir=" + profile,
         "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>", "--no-first-run", "--disable-extensions"]
    }

    /// The DOM after the page's scripts ran, at a window of `width` x `height` CSS pixels.
    static func dumpDOM(_ file: URL, width: Int = 1200, height: Int = 900, profile: String) throws -> String {
        let data = try run(path!, flags(profile: profile) + ["--window-size=\(width),\(height)", "--dump-dom", file.absoluteString])
        return String(decoding: data, as: UTF8.self)
    }

    /// Prints `file` to `pdf` as Chromium prints it (the page's own @page size and margins, no
    /// browser header or footer).
    static func printToPDF(_ file: URL, _ pdf: URL, profile: String) throws {
        _ = try run(path!, flags(profile: profile) + ["--no-pdf-header-footer", "--print-to-pdf=" + pdf.path, file.absoluteString])
        guard FileManager.default.fileExists(atPath: pdf.path) else {
            throw Failure(description: "chromium wrote no \(pdf.path)")
        }
    }

    /// The page count pdfinfo reads.
    static func pageCount(_ pdf: URL) throws -> Int {
        let info = String(decoding: try run(pdfinfo!, [pdf.path]), as: UTF8.self)
        for line in info.split(separator: "\n") where line.hasPrefix("Pages:") {
            if let n = Int(line.dropFirst(6).trimmingCharacters(in: .whitespaces)) { return n }
        }
        throw Failure(description: "pdfinfo printed no page count: \(info)")
    }

    /// The text of each page, in reading order (pdftotext separates pages with a form feed).
    static func pageTexts(_ pdf: URL) throws -> [String] {
        let text = String(decoding: try run(pdftotext!, ["-layout", "-enc", "UTF-8", pdf.path, "-"]), as: UTF8.self)
        var pages = text.components(separatedBy: "\u{0C}")
        if pages.last?.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty == true { pages.removeLast() }
        return pages
    }
}
