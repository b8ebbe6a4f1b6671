from django.apps import AppConfig


class Config(AppConfig):
    name = "tests.spec.validators"
    label = "spec_validators"
