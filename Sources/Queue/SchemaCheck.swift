/// What `media-worker doctor` checks of the app's schema: every column media-worker reads or
/// writes, and every enum value it sets or compares with.
extension JobStore {
    var requiredColumns: [(table: String, columns: [String])] {
        [
            (
                tables.videoProcessing,
                [
                    "id", "userId", "fileUploadId", "processingType", "status", "qualityProfile", "inputStorageKey",
                    "originalFileName", "inputMimeType", "inputFileSize", "outputStorageKeys", "outputTotalSize",
                    "outputUrls", "progress", "estimatedDurationSeconds", "actualDurationSeconds", "inputMetadata",
                    "outputMetadata", "thumbnails", "errorMessage", "processingLogs", "retryCount", "isFromDeletedUser",
                    "startedAt", "completedAt", "createdAt", "updatedAt",
                ]
            ),
            (tables.fileUpload, ["id", "uploaderId", "status", "thumbnailUrl", "metadata", "deletedAt", "updatedAt"]),
            (tables.user, ["id", "deletedAt"]),
        ]
    }

    /// What is missing from the schema, one sentence each; empty when media-worker can work.
    public func schemaProblems(_ session: PostgresSession) throws -> [String] {
        var problems: [String] = []
        for (table, columns) in requiredColumns {
            guard
                try session.query("SELECT to_regclass($1) IS NOT NULL AS present", [table], operation: "find a table")
                    .first?.require("present", as: Bool.self) == true
            else {
                problems.append("table \(table) does not exist")
                continue
            }
            let present = Set(
                try session.query(
                    """
                    SELECT attname FROM pg_attribute
                    WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped
                    """, [table], operation: "list columns"
                ).all.map { try $0.require("attname") as String })
            let missing = columns.filter { !present.contains($0) }
            if !missing.isEmpty {
                problems.append("table \(table) lacks column(s) \(missing.map { "\"\($0)\"" }.joined(separator: ", "))")
            }
        }
        for (table, column, _, _, values) in enumColumns {
            let rows = try session.query(
                """
                SELECT t.typtype::text AS kind, e.enumlabel AS label FROM pg_attribute a
                JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN pg_enum e ON e.enumtypid = t.oid
                WHERE a.attrelid = to_regclass($1) AND a.attname = $2
                """, [table, column], operation: "list enum values")
            // A text column accepts every value; only an enum can lack one.
            guard try rows.first?.require("kind") as String? == "e" else { continue }
            let labels = Set(try rows.all.compactMap { try $0.text("label") })
            let missing = values.filter { !labels.contains($0) }
            if !missing.isEmpty {
                problems.append("\(table).\"\(column)\" has no enum value(s) \(missing.joined(separator: ", "))")
            }
        }
        return problems
    }

    /// The table privileges the daemon needs that the connected user lacks, e.g.
    /// `UPDATE on file_upload`: it reads and updates jobs and uploads, reads users, reads and
    /// writes its own outputs, variants, pieces, unreferenced and sweeps tables and reads its
    /// paused-types and migrations tables (when they exist).
    /// `pg_notify` is everyone's by default.
    public func missingPrivileges(_ session: PostgresSession) throws -> [String] {
        let needs: [(String, String)] = [
            (tables.videoProcessing, "SELECT"), (tables.videoProcessing, "UPDATE"),
            (tables.fileUpload, "SELECT"), (tables.fileUpload, "UPDATE"), (tables.user, "SELECT"),
            (tables.outputs, "SELECT"), (tables.outputs, "INSERT"), (tables.outputs, "UPDATE"),
            (tables.paused, "SELECT"), (tables.variants, "SELECT"), (tables.variants, "INSERT"),
            (tables.variants, "UPDATE"), (tables.pieces, "SELECT"), (tables.pieces, "INSERT"),
            (tables.pieces, "UPDATE"), (tables.pieces, "DELETE"), (tables.outputs, "DELETE"),
            (tables.variants, "DELETE"), (tables.unreferenced, "SELECT"), (tables.unreferenced, "INSERT"),
            (tables.unreferenced, "DELETE"), (tables.sweeps, "SELECT"), (tables.sweeps, "INSERT"),
            (tables.sweeps, "UPDATE"), (tables.migrations, "SELECT"),
        ]
        // One statement, the (table, privilege) pairs bound as parameters, answered in that order.
        let pairs = needs.indices.map { "($\(2 * $0 + 1)::text, $\(2 * $0 + 2)::text, \($0))" }.joined(separator: ", ")
        return try session.query(
            """
            SELECT t, p FROM (VALUES \(pairs)) AS needs(t, p, position)
            WHERE to_regclass(t) IS NOT NULL AND NOT has_table_privilege(to_regclass(t), p) ORDER BY position
            """, needs.flatMap { [$0.0, $0.1] }, operation: "check the user's privileges"
        ).all.map { row in "\(try row.require("p", as: String.self)) on \(try row.require("t", as: String.self))" }
    }

    /// The server's version, as `server_version` says it.
    public func serverVersion(_ session: PostgresSession) throws -> String {
        try session.query("SELECT current_setting('server_version') AS v", operation: "read the version").first?
            .text("v") ?? "?"
    }
}
