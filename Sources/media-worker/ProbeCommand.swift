import ArgumentParser
import Foundation
import Media

/// `media-worker probe FILE`: METADATA, from the container headers only.
struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Report what a video file holds, reading its headers only (no decode).",
        discussion: """
            Prints the container, duration, size and bit rate; the main video stream's codec, profile, \
            stored and displayed size, rotation, frame rate (and whether it varies), pixel format, bit \
            depth, colours and HDR; the main audio stream; creation time and location.
            """
    )

    @Argument(help: "The video file.")
    var file: String

    @OptionGroup var report: ReportOptions
    @OptionGroup(title: "Limits") var limits: LimitOptions
    @OptionGroup(title: "Resources") var resources: ProcessLimitOptions

    func run() throws {
        _ = report.makeLogger(label: "media-worker.probe")
        resources.apply()
        let info: MediaInfo
        do {
            info = try Probe.inspect(path: file, limits: limits.limits)
        } catch {
            throw report.fail(error)
        }
        if report.json {
            try report.printJSON(info)
        } else {
            print(Summary.describe(info, file: file))
        }
    }
}
