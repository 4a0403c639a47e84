extension Probe.Opened {
    /// Reads the audio alone: the demuxer drops every other stream's packets (nothing of the video
    /// is decoded), each packet counts against the file's own size (`ReplayCheck`), undecodable
    /// ones are skipped within `DamagedPackets`' limit, and every decoded frame goes to `take`.
    /// `eachPacket` runs before each audio packet (a budget check). For the pieces' audio and the
    /// loudness scan, which read the same audio the same way.
    func decodeAudioAlone(
        eachPacket: () throws -> Void = {}, _ take: (Frame) throws -> Void
    ) throws(MediaError) {
        guard let audio = audioStream else { return }
        do {
            file.discardAllStreams(except: [audio.index])
            let decoder = try StreamDecoder(
                input: file, stream: audio.index, timeBase: audio.timeBase, threads: 1, maxPixels: 0)
            var damage = DamagedPackets(audio: self)
            var replay = ReplayCheck(fileBytes: info.sizeBytes)
            let (packet, frame) = (try Packet(), try Frame())
            while try file.read(into: packet) {
                try replay.count(packet.size, stream: packet.streamIndex)
                guard packet.streamIndex == audio.index else { continue }
                try eachPacket()
                try decoder.decode(packet, into: frame, damage: &damage) { try take(frame) }
            }
            try decoder.decode(nil, into: frame, damage: &damage) { try take(frame) }
        } catch {
            throw .decoding(error)
        }
    }
}
