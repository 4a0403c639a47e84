/// What a `WorkerService` did, for whoever watches `events`. A run's ending is told before its
/// slot is freed, so whatever the freed slot claims next comes after it in the stream.
public enum WorkerEvent: Sendable, Equatable {
    /// The database and storage answered: jobs are claimed from now on.
    case ready
    case claimed(Int, Lane)
    /// Background work on the result of this job (its AV1 variant) began, or ended.
    case variantStarted(Int)
    case variantEnded(Int, VariantRunner.Ending)
    /// A piece (job id, index) of another run's long video began here, or ended.
    case pieceStarted(Int, Int)
    case pieceEnded(Int, Int, PieceRunner.Ending)
    /// What a running job did (progress, stills published, outputs reused).
    case run(Int, JobRunner.Event)
    case finished(Int, JobRunner.Ending)
    /// The service is done; how its jobs ended.
    case stopped([JobRunner.Ending: Int])
}

/// The daemon could not start (`--until-idle` runs do not wait for the database or storage).
struct WorkerStartError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
