"""Role proofs the Decentralized Claims Protocol 1.0 way, between our own nodes.

Every node is both sides:

- **holder** (``wallet``, ``credential_service``): the node keeps the credentials issued to it
  (its wallet) and answers ``POST /dcp/presentations/query`` with a presentation signed by its
  key — but only to a verifier that shows an access token this node minted for it
  (``access_tokens``), carried in the verifier's self-issued token's ``token`` claim;
- **verifier** (``presentations``): when a consumer's protocol request carries such a
  ``token``, the provider resolves the consumer's DID, finds its ``CredentialService``, queries
  it for the scopes its policies need, verifies the presentation and every credential in it,
  and caches the verified credentials per peer and scope until they expire.
"""

DCP_CONTEXT = "https://w3id.org/dspace-dcp/v1.0/dcp.jsonld"
"""The context of DCP messages (``PresentationQueryMessage``, ``PresentationResponseMessage``)."""
