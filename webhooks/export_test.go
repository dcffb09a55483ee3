package webhooks

// SecretBinding is secretBinding, for tests that open a stored secret.
var SecretBinding = secretBinding
