# coding:utf-8
# The seed's same_private_example_add_remove.py (seeds/002), ported to Python 3.
# Only what Python 3 needs was changed: urllib.request for urllib2, print(), bytes
# for base64 (encode before, decode after), the JSON body encoded to bytes; and two
# slips of the original fixed: `struct` imported, `IMG` defined (as ADD_IMG).
import urllib.request
import base64
import json
import os
import struct
import sys
import logging
logger = logging.getLogger()

AS_SERVER = 'http://10.255.140.17:8025'

ADD_IMG = 'query.jpg'
IMG = ADD_IMG
APPID='test'


def rts_as_add(filename=ADD_IMG, appid=APPID):
    params = {
        "appid": appid,
        "format": "json",
        "from": "from_xx",
        "logid": 666,
        "brief": "brief",
        "image": base64.b64encode(open(filename,'rb').read()).decode(),
        "features": [{"fea_id":1000, "fea_data" : base64.b64encode(b"addtest").decode()}, {"fea_id":999, "fea_data": base64.b64encode(struct.pack('II', 0, 4)).decode()}]
    }
    conn = urllib.request.urlopen(AS_SERVER+'/RTSAsService/add', data=json.dumps(params).encode()).read()
    print(conn.decode())

def rts_as_update(filename=IMG, appid=APPID):
    params = {
        "appid": appid,
        "format": "json",
        "from": "from_xx",
        "logid": 666,
        "image": base64.b64encode(open(filename,'rb').read()).decode(),
        "features": [{"fea_id":1000, "fea_data" : base64.b64encode(b"addtest").decode()}]
    }
    conn = urllib.request.urlopen(AS_SERVER+'/RTSAsService/update', data=json.dumps(params).encode()).read()
    print(conn.decode())

def rts_as_search(filename=IMG, appid=APPID):
    params = {
        "appid": appid,
        "image": base64.b64encode(open(filename,'rb').read()).decode(),
        "format": "json",
        "from": "from_yyy",
        "logid": 44,
    }
    conn = urllib.request.urlopen(AS_SERVER+'/RTSAsService/search', data=json.dumps(params).encode()).read()
    print(conn.decode())

def rts_as_delete(contsign, appid=APPID):
    sign1, sign2 = map(int,contsign.split(','))

    params = {
        "appid": appid,
        "format": "json",
        "from": "from_xx",
        "logid": 666,
        #"image": base64.b64encode(open('1.jpg','rb').read()),
        "contsign" : {'sign1':sign1,"sign2":sign2},
    }
    conn = urllib.request.urlopen(AS_SERVER+'/RTSAsService/remove', data=json.dumps(params).encode()).read()
    print(conn.decode())

def rts_as_snapshot(appid=APPID):
    params = {
        "appid": appid,
        "from": "from_xx",
        "logid": 666,
    }
    conn = urllib.request.urlopen(AS_SERVER+'/RTSAsService/snapshot', data=json.dumps(params).encode()).read()
    print(conn.decode());

def signup(appid=APPID):
    params = {
        "appid": appid,
        "from": "from_xx",
        "logid": 666,
    }
    conn = urllib.request.urlopen(AS_SERVER+'/RTSAsService/signup', data=json.dumps(params).encode()).read()
    print(conn.decode());

if __name__ == '__main__':
    if len(sys.argv) > 1:
        func = getattr(sys.modules[__name__], sys.argv[1])
        func(*sys.argv[2:])
    else:
        print('api.py {rts_as_add,rts_as_search,rts_as_delete}', file=sys.stderr)
