"""Built-in pipeline definitions (``*.toml``), installed as the package ``multisr.pipelines``."""
