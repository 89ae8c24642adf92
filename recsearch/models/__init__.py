"""Model zoo, the architecture spec (one versioned JSON schema) and its builder."""
