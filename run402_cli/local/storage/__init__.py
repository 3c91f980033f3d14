"""Blob storage: a project's keys over the shared CAS (spec/api-deploy.md §1.3.9, §3).

- store.py: the tables (assets, their immutable versions, the revision a prune confirms),
  the project's asset host, the wire `asset_ref`, usage and the tier quota;
- slice.py: the `assets` slice of an apply spec: validation, its plan buckets, its writes in
  the activation transaction;
- serve.py: `/_blob/<key>` on a project's hosts (ETag, Range, Cache-Control by kind) and
  signed URLs for private keys;
- api.py: `/storage/v1` (get, ls, rm, sign, diagnose) and `/apply/v1/service-asset-put`;
- derive.py: what an image upload becomes at commit (image fields, EXIF strip, variants), with
  images.py (Pillow and SVG reading, WebP variants, blurhash) and strip.py (lossless EXIF/XMP
  removal from JPEG, PNG and WebP bytes).
"""
