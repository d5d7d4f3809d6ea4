"""The optional C extension (kaifang.desensitize._hmac); everything else is in pyproject.toml.

The extension computes the HMAC-SHA256 pseudonyms with OpenSSL's libcrypto. It is optional: a
machine without a C compiler or the OpenSSL headers (libssl-dev) still installs Kaifang, and
kaifang.desensitize.mask falls back to the same HMAC composed in DuckDB SQL.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "kaifang.desensitize._hmac",
            sources=["kaifang/desensitize/_hmac.c"],
            libraries=["crypto"],
            extra_compile_args=["-O2", "-std=c99"],
            optional=True,
        )
    ]
)
