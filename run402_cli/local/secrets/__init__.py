"""Project secrets: encrypted at rest (store.py), set / listed / deleted with the project's
service key (handlers.py), read decrypted only by the functions runtime (store.secret_values)."""
