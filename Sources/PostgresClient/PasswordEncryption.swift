import CLibPQ

extension Connection {
    /// The password verifier (`SCRAM-SHA-256$…`) for `user`, computed here by libpq
    /// (`PQencryptPasswordConn`), so that the plain password never travels to the server or
    /// into its logs; `CREATE ROLE … PASSWORD` accepts the verifier as it is.
    public func encryptPassword(_ password: String, user: String) throws -> String {
        guard let encrypted = PQencryptPasswordConn(handle, password, user, "scram-sha-256") else {
            throw PostgresError(kind: .client, message: "could not encrypt the password: \(connectionErrorMessage(handle))")
        }
        defer { PQfreemem(encrypted) }
        return String(cString: encrypted)
    }
}
