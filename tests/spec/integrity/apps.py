from django.apps import AppConfig


class Config(AppConfig):
    name = "tests.spec.integrity"
    label = "spec_integrity"
