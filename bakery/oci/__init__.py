"""OCI images: value types (`model`), a blob cache, a registry client, and three publish
targets behind `publish.Publisher` (`remote`, `layout`, `daemon`). Import the module you use:
this package imports nothing on its own, so a layout bake never loads the HTTP client."""
