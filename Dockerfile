# One image for every process of the Budget Management System: web, worker and beat differ only
# in their command (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    BUDGET_VAR_DIR=/app/var

WORKDIR /app

# Dependencies first, so that a code change does not reinstall them.
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY . .

# Run as an unprivileged user; var/ (static files, local state) is the only place it writes.
RUN useradd --system --create-home --uid 1000 budget \
    && mkdir -p /app/var \
    && chown budget /app/var
USER budget

EXPOSE 8000
CMD ["python", "manage.py", "runserver", "0.0.0.0:8000"]
