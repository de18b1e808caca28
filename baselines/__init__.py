"""Built-in models of meterbench, one module per model family, registered with ``@register_model``."""
