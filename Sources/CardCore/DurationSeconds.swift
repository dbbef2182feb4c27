extension Duration {
    /// The duration in seconds, for timings printed or reported as numbers.
    public var seconds: Double {
        let (whole, attoseconds) = components
        return Double(whole) + Double(attoseconds) / 1e18
    }
}
