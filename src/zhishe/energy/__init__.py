"""Smart energy: tariffs, forecasts, anomalies, demand response and EV charging.

Built on IoT readings (``zhishe.iot``): a household sees its own energy and cost, the operator
sees and protects the community's transformer, leaks and abnormal use are caught, an enrolled
elderly resident's unusual inactivity raises an alert, and demand response and EV charging keep the
peak under the limit.

Tables (``models.py``): tariffs with effective dates, forecast runs, alerts, demand-response
programmes, events, participants and reports (OpenADR 3 concepts), and charging sessions and plans.
Computation lives in plain modules: ``tariff``, ``forecast``, ``detect``, ``dr`` and ``charging``.
"""
