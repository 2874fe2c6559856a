from agora.cli.main import app

app()
