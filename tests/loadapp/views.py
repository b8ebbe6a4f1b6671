import json

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from . import traffic


@csrf_exempt
def operation(request, name):
    args = json.loads(request.body or b"{}")
    try:
        return JsonResponse(traffic.run(name, args))
    except Exception as exc:
        # 503: the store's server went away under the request, which may be
        # repeated; anything else is a failure of the test.
        status = 503 if traffic.is_transient(exc) else 500
        return JsonResponse({"error": f"{type(exc).__name__}: {exc}"}, status=status)
