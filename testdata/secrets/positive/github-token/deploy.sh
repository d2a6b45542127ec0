#!/bin/sh
curl -H "Authorization: token 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" https://api.github.com/user
