"""The app model: what an app is before it runs anywhere.

`config.AppConfig` (every reference parameter, validated once), the naming rules
(`names`) and resource quantities (`quantities`) it checks against, deployment spec files
(`specs`, multi-document YAML) and which kind of image reference `image=` is (`images`).
Nothing here starts, stores or reaches anything.
"""
