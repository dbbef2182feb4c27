// Placeholder: replaced by the local cluster code.
