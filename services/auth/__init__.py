"""The auth service: users, EdDSA access tokens with JWKS, and the credential vault."""
