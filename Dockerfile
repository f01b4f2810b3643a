FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN DEBUG=true SECURE_HTTPS=false SECRET_KEY=collectstatic-only DATABASE_URL=postgres://x@localhost/x \
    REDIS_URL=redis://localhost:6379/0 python manage.py collectstatic --noinput -v0
# No process runs as root: web, worker, beat and the MLLP listener (docker-compose.yml) all run as this user.
RUN useradd --system labflow
USER labflow
# gunicorn, the MLLP listener
EXPOSE 8000 2575
