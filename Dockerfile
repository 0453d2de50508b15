# One image for every mall process: `mall migrate`, `mall serve`, `mall writer`.
# Build: docker build -t flashmall .   (the compose file builds it as flashmall:local)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Every dependency ships manylinux wheels for CPython 3.11 (asyncpg, uvloop, hiredis,
# orjson, msgspec, cryptography, argon2-cffi), so no compiler is installed.
WORKDIR /build
COPY pyproject.toml README.md ./
COPY mall/ mall/
COPY seckill/ seckill/
COPY checkout/ checkout/
COPY catalog_api/ catalog_api/
COPY order_writer/ order_writer/
COPY accounts/ accounts/
COPY coupons/ coupons/
COPY membership/ membership/
COPY pricing/ pricing/
COPY analytics/ analytics/
COPY audit/ audit/
COPY recommendations/ recommendations/
COPY lua/ lua/
COPY migrations/ migrations/

# The mall reads its Redis scripts and SQL migrations from `lua/` and `migrations/` beside its
# packages, which a wheel does not carry: put them next to the installed packages.
RUN pip install . \
    && site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
    && cp -r lua migrations "$site"/ \
    && cd / && rm -rf /build \
    && python -c 'import mall.lua, mall.migrate; assert mall.lua.LUA_DIR.is_dir() and mall.migrate.MIGRATIONS_DIR.is_dir()'

RUN useradd --system --uid 10001 --user-group --home-dir /app --create-home \
        --shell /usr/sbin/nologin mall
WORKDIR /app
USER mall

# 8080: `mall serve`; 9101: the writer's /metrics and /livez.
EXPOSE 8080 9101
ENTRYPOINT ["mall"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
