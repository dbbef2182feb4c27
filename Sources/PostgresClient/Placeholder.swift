// Placeholder: replaced by the libpq client.
